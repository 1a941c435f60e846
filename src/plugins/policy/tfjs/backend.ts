import { Context, Effect, Layer } from "effect"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { writeFileAtomic } from "../../../core/files.ts"
import { cacheRoot } from "../../dataset/synth/default.ts"
import { PolicyError } from "../../../core/policy.ts"

/**
 * TensorFlow.js, loaded through its CommonJS entry points (the ES build's gradient registry does
 * not load under Node's ESM). One copy of tfjs-core is shared by every backend.
 */
const require = createRequire(import.meta.url)
export type Tf = typeof import("@tensorflow/tfjs-core")

export type BackendName = "auto" | "wasm" | "cpu" | "native" | "webgpu"

export interface TensorBackend {
  readonly tf: Tf
  /** The backend in use: "wasm", "cpu" or "tensorflow" (a native tfjs-node). */
  readonly name: string
}

export class Backend extends Context.Tag("virl/TensorBackend")<Backend, TensorBackend>() {}

/**
 * tfjs-core ships its gradient registry only as ES modules with extensionless imports, which
 * Node cannot load by itself. Bundle it once to CommonJS with esbuild (kept in the cache);
 * tfjs keeps its engine and registries on a global, so the bundle registers into the engine
 * every backend uses.
 */
const registerGradients = (): void => {
  const entry = require.resolve("@tensorflow/tfjs-core/dist/register_all_gradients.js")
  const version = (require("@tensorflow/tfjs-core/package.json") as { version: string }).version
  const file = path.join(cacheRoot(), "tfjs", `register_all_gradients-${version}.cjs`)
  if (!fs.existsSync(file)) {
    const esbuild = require("esbuild") as typeof import("esbuild")
    const result = esbuild.buildSync({ entryPoints: [entry], bundle: true, format: "cjs", platform: "node", write: false, logLevel: "silent" })
    writeFileAtomic(file, result.outputFiles[0].contents)
  }
  require(file)
}

let tfModule: Tf | undefined
const loadTf = (): Tf => {
  if (tfModule === undefined) {
    tfModule = require("@tensorflow/tfjs-core") as Tf
    require("@tensorflow/tfjs-backend-cpu")
    require("@tensorflow/tfjs-backend-wasm")
    registerGradients()
  }
  return tfModule
}

const tryNative = (): boolean => {
  try {
    require("@tensorflow/tfjs-node")
    return true
  } catch {
    return false
  }
}

/** What WebGPU's adapter says of itself, once the backend started on one (vendor, architecture, device, description). */
let adapterInfo: Record<string, string> | undefined
export const webgpuAdapter = (): Readonly<Record<string, string>> | undefined => adapterInfo

/** Why `webgpu` cannot start here, or undefined once it is registered with tfjs. */
const startWebGpu = async (): Promise<string | undefined> => {
  let dawn: { create: (options: string[]) => unknown; globals: Record<string, unknown> }
  try {
    dawn = require("webgpu") as typeof dawn
  } catch {
    return "the npm packages webgpu and @tensorflow/tfjs-backend-webgpu are not installed (npm install --no-save webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0; scripts/gpu/prepare.sh does it for a GPU machine)"
  }
  const g = globalThis as unknown as { navigator?: { gpu?: { requestAdapter: () => Promise<unknown> } } }
  if (g.navigator?.gpu === undefined) {
    Object.assign(globalThis, dawn.globals)
    Object.defineProperty(globalThis, "navigator", { value: { gpu: dawn.create([]) }, configurable: true, writable: true })
  }
  const adapter = await g.navigator!.gpu!.requestAdapter().catch(() => null)
  if (adapter === null || adapter === undefined) {
    return "Dawn found no GPU adapter (is the Vulkan loader libvulkan1 installed, with the GL dispatch libraries, and the NVIDIA ICD visible — VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json?)"
  }
  try {
    require("@tensorflow/tfjs-backend-webgpu")
  } catch (e) {
    return `@tensorflow/tfjs-backend-webgpu does not load: ${(e as Error).message}`
  }
  const info = (adapter as { info?: Record<string, unknown> }).info ?? {}
  adapterInfo = Object.fromEntries(
    ["vendor", "architecture", "device", "description"].flatMap((k) => (typeof info[k] === "string" && info[k] !== "" ? [[k, info[k] as string]] : []))
  )
  return undefined
}

/**
 * Chooses the tensor backend: `auto` takes a native tfjs-node when one is installed, else
 * wasm (SIMD, one thread), else the pure-JS cpu backend; a comma-separated list is tried in order
 * (`webgpu,wasm` falls back to wasm); a single name that cannot start is an error saying why.
 */
export const make = (requested: string): Effect.Effect<TensorBackend, PolicyError> =>
  Effect.tryPromise({
    try: async () => {
      const tf = loadTf()
      const names = requested.split(",").map((n) => n.trim()) as BackendName[]
      const order = names.flatMap((
        n
      ) => (n === "auto" ? [...(tryNative() ? ["tensorflow"] : []), "wasm", "cpu"] : n === "native" ? (tryNative() ? ["tensorflow"] : []) : [n]))
      const why: string[] = []
      if (names.includes("native") && !tryNative()) why.push("native: @tensorflow/tfjs-node is not installed")
      for (const name of order) {
        if (name === "webgpu") {
          const missing = await startWebGpu()
          if (missing !== undefined) {
            why.push(`webgpu: ${missing}`)
            continue
          }
        }
        // IS_TEST silences the cpu backend's "install tfjs-node" banner while it starts; left
        // on, it would also turn on tfjs's slow per-kernel leak checks
        tf.env().set("IS_TEST", true)
        const ok = await tf.setBackend(name).catch(() => false)
        tf.env().set("IS_TEST", false)
        if (ok) {
          await tf.ready()
          return { tf, name: tf.getBackend() }
        }
        why.push(`${name}: did not start`)
      }
      throw new Error(`no backend of "${requested}" could start — ${why.join("; ")}`)
    },
    catch: (e) => new PolicyError({ message: `tensor backend: ${(e as Error).message}` })
  })

export const layer = (requested: string = "auto") => Layer.effect(Backend, make(requested))
