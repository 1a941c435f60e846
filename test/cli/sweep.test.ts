import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { childProcesses, running } from "../support/processes.ts"
import { tinyDatasets } from "../support/tiny-city.ts"

const BIN = path.resolve(import.meta.dirname, "../../bin/virl.mjs")
const root = fs.mkdtempSync(path.join(os.tmpdir(), "virl-sweep-"))
const datasets = path.join(root, "datasets")
const env = { ...process.env, VIRL_DATASETS: datasets }
const virl = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env })

beforeAll(async () => {
  await tinyDatasets(datasets)
  const core = pathToFileURL(path.resolve(import.meta.dirname, "../../src/core/experiment.ts")).href
  fs.writeFileSync(
    path.join(root, "tiny_sweep.ts"),
    `import { experiment, sweep } from ${JSON.stringify(core)}
const base = experiment({
  name: "tiny", seeds: [1], suites: ["indist", "rule-ood", "visual-ood"], evaluations: 1,
  arms: [{ name: "sft", recipe: { kind: "sft" } }, { name: "rl", recipe: { kind: "ppo", from: "sft" } }],
  config: { "sft_config.epochs": 1, num_steps: 16, num_updates: 1, num_processes: 2, "eval_config.num_traj": 2, "eval_config.num_traj_visual": 2 }
})
export default sweep({ name: "tiny_sweep", base, compare: "rl", grid: { verify_iter: [1, 2].map((n) => ({ label: String(n), config: { "env_config.verify_iter": n } })) } })
`
  )
})
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

describe("virl sweep", () => {
  it("runs the trials in parallel, writes a comparison, and re-runs nothing the second time", () => {
    const out = path.join(root, "out")
    const first = virl("sweep", path.join(root, "tiny_sweep.ts"), "--out", out, "--parallel", "2")
    expect(first.status).toBe(0)
    expect(first.stderr).toMatch(/2 trials, 0 already finished, 2 to run/)
    const md = fs.readFileSync(path.join(out, "sweep.md"), "utf8")
    expect(md).toMatch(/\| verify_iter=1 \| \d+\.\d ± \d+\.\d/)
    expect(md).toMatch(/\| verify_iter=2 \| \d+\.\d ± \d+\.\d/)
    expect(fs.readFileSync(path.join(out, "plots", "sweep.png")).subarray(1, 4).toString()).toBe("PNG")
    expect(fs.existsSync(path.join(out, "plots", "sweep.svg"))).toBe(true)
    const second = virl("sweep", path.join(root, "tiny_sweep.ts"), "--out", out)
    expect(second.status).toBe(0)
    expect(second.stderr).toMatch(/2 trials, 2 already finished, 0 to run/)
  }, 240_000)

  it("tells a sweep from an experiment", () => {
    const run = virl("run", path.join(root, "tiny_sweep.ts"))
    expect(run.status).not.toBe(0)
    expect(run.stderr).toMatch(/declares a sweep; run it with virl sweep .*--trial one of: verify_iter=1, verify_iter=2/)
  })

  it("Ctrl-C stops the sweep and its trial processes: no orphan is left", async () => {
    const out = path.join(root, "interrupted")
    const parent = spawn(process.execPath, [BIN, "sweep", path.join(root, "tiny_sweep.ts"), "--out", out, "--parallel", "2"], { env, stdio: "ignore" })
    // wait until both trials run as child processes
    let kids: number[] = []
    for (let i = 0; i < 300 && kids.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 50))
      kids = childProcesses(parent.pid, "--trial")
    }
    expect(kids.length).toBe(2)
    const exited = new Promise<void>((resolve) => parent.on("exit", () => resolve()))
    parent.kill("SIGINT")
    await exited
    // the sweep waits for its trials to stop before it exits
    expect(running(kids)).toEqual([])
  }, 60_000)
})
