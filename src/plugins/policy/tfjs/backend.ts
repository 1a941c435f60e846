import { Context, Effect, Layer } from "effect"
import { createRequire } from "node:module"
import { PolicyError } from "../../../core/policy.ts"

/**
 * TensorFlow.js, loaded through its CommonJS entry points (the ES build's gradient registry does
 * not load under Node's ESM). One copy of tfjs-core is shared by every backend.
 */
const require = createRequire(import.meta.url)
export type Tf = typeof import("@tensorflow/tfjs-core")

export type BackendName = "auto" | "wasm" | "cpu" | "native"

export interface TensorBackend {
  readonly tf: Tf
  /** The backend in use: "wasm", "cpu" or "tensorflow" (a native tfjs-node). */
  readonly name: string
}

export class Backend extends Context.Tag("virl/TensorBackend")<Backend, TensorBackend>() {}

let tfModule: Tf | undefined
const loadTf = (): Tf => {
  if (tfModule === undefined) {
    tfModule = require("@tensorflow/tfjs-core") as Tf
    require("@tensorflow/tfjs-core/dist/register_all_gradients")
    require("@tensorflow/tfjs-backend-cpu")
    require("@tensorflow/tfjs-backend-wasm")
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

/**
 * Chooses the tensor backend: `auto` takes a native tfjs-node when one is installed, else
 * wasm (SIMD, one thread), else the pure-JS cpu backend.
 */
export const make = (requested: BackendName): Effect.Effect<TensorBackend, PolicyError> =>
  Effect.tryPromise({
    try: async () => {
      const tf = loadTf()
      const order =
        requested === "auto" ? [...(tryNative() ? ["tensorflow"] : []), "wasm", "cpu"] : requested === "native" ? (tryNative() ? ["tensorflow"] : []) : [requested]
      for (const name of order) {
        // IS_TEST silences the cpu backend's "install tfjs-node" banner while it starts; left
        // on, it would also turn on tfjs's slow per-kernel leak checks
        tf.env().set("IS_TEST", true)
        const ok = await tf.setBackend(name).catch(() => false)
        tf.env().set("IS_TEST", false)
        if (ok) {
          await tf.ready()
          return { tf, name: tf.getBackend() }
        }
      }
      throw new Error(requested === "native" ? "no native backend: @tensorflow/tfjs-node is not installed" : `backend ${requested} did not start`)
    },
    catch: (e) => new PolicyError({ message: `tensor backend: ${(e as Error).message}` })
  })

export const layer = (requested: BackendName = "auto") => Layer.effect(Backend, make(requested))
