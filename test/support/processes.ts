import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { expect } from "vitest"
import { readEvals, readKl } from "../../src/app/run-folder.ts"

const BIN = path.resolve(import.meta.dirname, "../../bin/virl.mjs")

/**
 * `node ARGS` in the background: its exit code and output. A command of minutes must not block
 * the test worker's event loop (spawnSync does, and vitest's RPC to the worker then times out).
 */
export const nodeInBackground = (args: ReadonlyArray<string>, options: { readonly env: NodeJS.ProcessEnv; readonly cwd?: string }) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [...args], {
      env: options.env,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += String(d)))
    child.stderr.on("data", (d) => (stderr += String(d)))
    child.on("exit", (code) => resolve({ status: code, stdout, stderr }))
  })

/** `virl ARGS` in the background (nodeInBackground). */
export const virlInBackground = (args: ReadonlyArray<string>, options: { readonly env: NodeJS.ProcessEnv; readonly cwd?: string }) =>
  nodeInBackground([BIN, ...args], options)

/** The pids of `parent`'s child processes whose command line has `flag`. */
export const childProcesses = (parent: number | undefined, flag: string): number[] =>
  spawnSync("ps", ["-eo", "pid=,ppid=,args="], { encoding: "utf8" })
    .stdout.trim()
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => Number(f[1]) === parent && f.includes(flag))
    .map((f) => Number(f[0]))

/** Those of `pids` still running. */
export const running = (pids: ReadonlyArray<number>): number[] =>
  pids.filter((pid) => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  })

/**
 * Two run folders of one experiment hold the same evaluations and KL (in any order: seeds side
 * by side append theirs as they finish), the same weights for each seed's `arms`, and the same config.json.
 */
export const expectSameRuns = (a: string, b: string, seeds: ReadonlyArray<number>, arms: ReadonlyArray<string>): void => {
  const key = (r: { seed: number; arm: string; step: number }) => `${r.seed}/${r.arm}/${r.step}`
  const evals = (dir: string) =>
    readEvals(path.join(dir, "evals.jsonl"))
      .map((r) => `${key(r)}/${r.suite}: ${JSON.stringify(r.metrics)}`)
      .sort()
  expect(evals(b)).toEqual(evals(a))
  const kl = (dir: string) =>
    readKl(path.join(dir, "kl.jsonl"))
      .map((r) => `${key(r)}: ${r.kl}`)
      .sort()
  expect(kl(b)).toEqual(kl(a))
  for (const seed of seeds) {
    for (const arm of arms) {
      const weights = (dir: string) => fs.readFileSync(path.join(dir, `seed-${seed}`, arm, "checkpoint", "weights.bin"))
      expect(weights(b).equals(weights(a))).toBe(true)
    }
  }
  expect(fs.readFileSync(path.join(b, "config.json"), "utf8")).toBe(fs.readFileSync(path.join(a, "config.json"), "utf8"))
}
