import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { cacheRoot } from "../../src/plugins/dataset/synth/default.ts"
import { nodeInBackground } from "./processes.ts"

/**
 * WebGPU on the CPU (Dawn over Mesa's lavapipe), as scripts/software-webgpu.mjs prepares it:
 * the environment a process needs to find the driver, or why it is not here. The driver's
 * libraries are found through LD_LIBRARY_PATH, read when a process starts, so the checks run in
 * a child process (test/support/webgpu-check.ts); the test process itself is left as it is.
 */
export const softwareWebgpu = (): { readonly env: Readonly<Record<string, string>> } | { readonly missing: string } => {
  const require = createRequire(import.meta.url)
  try {
    require.resolve("webgpu")
    require.resolve("@tensorflow/tfjs-backend-webgpu")
  } catch {
    return { missing: "the npm packages webgpu and @tensorflow/tfjs-backend-webgpu (node scripts/software-webgpu.mjs installs them)" }
  }
  const file = path.join(cacheRoot(), "software-webgpu", "env.json")
  if (!fs.existsSync(file)) return { missing: `Mesa's lavapipe (${file}; node scripts/software-webgpu.mjs fetches it)` }
  return { env: JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, string> }
}

/** test/support/webgpu-check.ts in a child process with `env`: its JSON report. */
export const webgpuCheck = async (env: Readonly<Record<string, string>>) => {
  const { status, stdout, stderr } = await nodeInBackground(["--import", "tsx", path.join(import.meta.dirname, "webgpu-check.ts")], {
    env: { ...process.env, ...env }
  })
  const line = stdout.trim().split("\n").filter((l) => l.startsWith("{")).pop()
  return { status, report: line === undefined ? undefined : (JSON.parse(line) as unknown), stderr }
}
