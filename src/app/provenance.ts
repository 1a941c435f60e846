import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { webgpuAdapter } from "../plugins/policy/tfjs/backend.ts"

/** How a result was made: the code, its dependencies, the runtime and the machine. */
export interface Provenance {
  readonly virl: string
  /** The commit of the checkout virl ran from, and whether its tracked files had changes (null: not a git checkout). */
  readonly commit: string | null
  readonly dirty: boolean | null
  readonly packages: Readonly<Record<string, string>>
  readonly node: string
  readonly platform: string
  readonly cpu: { readonly model: string; readonly cores: number; readonly memory_gb: number }
  /** The GPU adapter WebGPU ran on in this process, if it did. */
  readonly gpu: Readonly<Record<string, string>> | null
}

const ROOT = path.resolve(import.meta.dirname, "../..")
const PACKAGES = [
  "effect",
  "@effect/cli",
  "@effect/cluster",
  "@tensorflow/tfjs-core",
  "@tensorflow/tfjs-backend-wasm",
  "@tensorflow/tfjs-backend-webgpu",
  "webgpu",
  "sharp"
]

const git = (args: string[]): string | null => {
  const r = spawnSync("git", args, { cwd: ROOT, encoding: "utf8" })
  return r.status === 0 ? r.stdout.trim() : null
}

const version = (name: string): string | undefined => {
  try {
    return (JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version?: string }).version
  } catch {
    return undefined
  }
}

/** This process's provenance, read now. */
export const provenance = (): Provenance => {
  const commit = git(["rev-parse", "HEAD"])
  const status = commit === null ? null : git(["status", "--porcelain", "--untracked-files=no"])
  return {
    virl: (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version,
    commit,
    dirty: status === null ? null : status !== "",
    packages: Object.fromEntries(PACKAGES.flatMap((name) => {
      const v = version(name)
      return v === undefined ? [] : [[name, v]]
    })),
    node: process.version,
    platform: `${process.platform} ${process.arch} ${os.release()}`,
    cpu: { model: os.cpus()[0]?.model.trim() ?? "unknown", cores: os.availableParallelism(), memory_gb: Math.round(os.totalmem() / 2 ** 30) },
    gpu: webgpuAdapter() ?? null
  }
}
