import { Effect, Either } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { PRESETS, resolveConfig } from "../../src/app/config.ts"
import { silent, trainPpo, trainRft, trainSft } from "../../src/app/train.ts"
import { withDefaults } from "../../src/app/components.ts"
import { isCheckpoint, loadCheckpoint, saveCheckpoint } from "../../src/core/checkpoint.ts"
import { PythonRandom } from "../../src/plugins/random/python-random.ts"
import { removeCity, tinyCity } from "../support/tiny-city.ts"

/**
 * Exact resume: training killed with SIGKILL at random points (mid-rollout, mid-update, mid-write)
 * and started again until it finishes ends with the same bytes as a run never interrupted.
 */
const BIN = path.resolve(import.meta.dirname, "../../bin/virl.mjs")
const values = {
  "sft_config.routes": 6,
  "sft_config.epochs": 4,
  "sft_config.batch_size": 16,
  num_processes: 4,
  num_steps: 32,
  num_updates: 6,
  save_every: 1,
  "policy_config.embedding": 32,
  "policy_config.hidden": 64,
  "policy_config.patch_features": 16
}
const config = Either.getOrThrow(resolveConfig(PRESETS.small, [{ source: "test", values }]))
const flags = Object.entries(values).map(([k, v]) => `--${k}=${v}`)

let city = ""
const out = fs.mkdtempSync(path.join(os.tmpdir(), "virl-resume-"))
beforeAll(async () => {
  city = await tinyCity("nyc", 6)
  await Effect.runPromise(withDefaults(config, trainSft(config, city, path.join(out, "init"), silent)))
}, 120_000)
afterAll(() => {
  removeCity(city)
  fs.rmSync(out, { recursive: true, force: true })
})

const TIMINGS = /_seconds$|^samples_per_second$|^time$/
const metrics = (dir: string) =>
  fs
    .readFileSync(path.join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => Object.fromEntries(Object.entries(JSON.parse(l) as Record<string, unknown>).filter(([k]) => !TIMINGS.test(k))))
const bytes = (dir: string, file: string) => fs.readFileSync(path.join(dir, "checkpoint", file))

/** Starts the command, kills it with SIGKILL once `when` says so, again and again until it exits on its own. */
const runWithKills = async (args: string[], dir: string, rng: PythonRandom) => {
  let kills = 0
  for (;;) {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += String(d)))
    const linesAtStart = fs.existsSync(path.join(dir, "metrics.jsonl")) ? metrics(dir).length : 0
    // kill once the run has logged 1-2 more updates, plus a random part of the next one
    const target = linesAtStart + 1 + rng.randint(0, 1)
    const extra = rng.random() * 400
    const watcher = setInterval(() => {
      const lines = fs.existsSync(path.join(dir, "metrics.jsonl")) ? fs.readFileSync(path.join(dir, "metrics.jsonl"), "utf8").split("\n").length - 1 : 0
      if (lines >= target) {
        clearInterval(watcher)
        setTimeout(() => child.kill("SIGKILL"), extra)
      }
    }, 10)
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)))
    clearInterval(watcher)
    if (code === 0) return kills
    if (code !== null) throw new Error(`virl ${args.join(" ")} exited with ${code}: ${stderr}`)
    kills++
    if (kills > 20) throw new Error("killed 20 times without finishing")
  }
}

describe("exact resume", () => {
  it("PPO killed with SIGKILL at random points finishes with the weights, optimizer state and metrics of an uninterrupted run", async () => {
    const init = path.join(out, "init", "checkpoint")
    const straight = path.join(out, "ppo-straight")
    await Effect.runPromise(withDefaults(config, trainPpo(config, init, city, straight, silent)))
    const killed = path.join(out, "ppo-killed")
    const kills = await runWithKills(["train", "ppo", "--init", init, "--data", city, "--out", killed, ...flags], killed, new PythonRandom(5))
    console.log(`killed ${kills} times`)
    expect(kills).toBeGreaterThan(0)
    expect(bytes(killed, "weights.bin").equals(bytes(straight, "weights.bin"))).toBe(true)
    expect(bytes(killed, "optimizer.bin").equals(bytes(straight, "optimizer.bin"))).toBe(true)
    expect(metrics(killed)).toEqual(metrics(straight))
    expect(metrics(killed).map((m) => m["update"])).toEqual([1, 2, 3, 4, 5, 6])
  }, 240_000)

  it("RFT with a fixed sampler resumes exactly too (the sampler's generator is in the checkpoint)", async () => {
    const init = path.join(out, "init", "checkpoint")
    const short = { ...config, num_updates: 3 }
    const straight = path.join(out, "rft-straight")
    await Effect.runPromise(withDefaults(short, trainRft(short, init, init, city, straight, silent)))
    const stepwise = path.join(out, "rft-stepwise")
    for (const n of [1, 2, 3]) await Effect.runPromise(withDefaults(short, trainRft({ ...short, num_updates: n }, init, init, city, stepwise, silent)))
    expect(bytes(stepwise, "weights.bin").equals(bytes(straight, "weights.bin"))).toBe(true)
    expect(metrics(stepwise)).toEqual(metrics(straight))
  }, 120_000)

  it("a checkpoint write killed between its renames is finished on the next read", async () => {
    const dir = path.join(out, "write", "checkpoint")
    const checkpoint = await Effect.runPromise(loadCheckpoint(path.join(out, "init", "checkpoint")))
    await Effect.runPromise(saveCheckpoint(dir, checkpoint))
    // the state a kill leaves after `rename(dir, old)` and before `rename(staging, dir)`: the writer's pid is a dead process's
    const dead = spawnSync("true").pid
    fs.renameSync(dir, `${dir}.old-${dead}`)
    fs.cpSync(`${dir}.old-${dead}`, `${dir}.partial-${dead}`, { recursive: true })
    expect(isCheckpoint(dir)).toBe(true)
    expect(fs.readdirSync(path.dirname(dir))).toEqual(["checkpoint"])
    expect((await Effect.runPromise(loadCheckpoint(dir))).parameters.size).toBe(checkpoint.parameters.size)
    // a live process's staging folder is its write under way (runners or seeds sharing a folder), not a leftover
    const live = spawn("sleep", ["30"])
    try {
      fs.cpSync(dir, `${dir}.partial-${live.pid}`, { recursive: true })
      expect(isCheckpoint(dir)).toBe(true)
      expect(fs.readdirSync(path.dirname(dir)).sort()).toEqual(["checkpoint", `checkpoint.partial-${live.pid}`])
    } finally {
      live.kill()
    }
  })
})

describe("exact resume of a whole experiment", () => {
  it("virl run killed with SIGKILL at random points finishes with the evaluations, KL, weights and results of an uninterrupted run", async () => {
    const data = path.join(out, "datasets")
    fs.mkdirSync(data, { recursive: true })
    for (const split of ["nyc-train", "nyc-eval", "sf"]) fs.symlinkSync(city, path.join(data, split))
    const file = path.join(out, "tiny_study.ts")
    const experimentModule = path.resolve(import.meta.dirname, "../../src/core/experiment.ts")
    fs.writeFileSync(
      file,
      `import { experiment } from ${JSON.stringify(experimentModule)}
export default experiment({
  name: "tiny_study",
  seeds: [1],
  suites: ["indist", "rule-ood"],
  evaluations: 2,
  klReference: "sft",
  arms: [
    { name: "sft", recipe: { kind: "sft" } },
    { name: "rl", recipe: { kind: "ppo", from: "sft" } },
    { name: "rft", recipe: { kind: "rft", from: "sft", samples: "sft" } }
  ],
  config: ${JSON.stringify({ ...values, "sft_config.epochs": 8, "sft_config.passes": 2, num_updates: 4, "kl_config.routes": 2, "eval_config.num_traj": 3 })}
})
`
    )
    const env = { ...process.env, VIRL_DATASETS: data }
    const straight = path.join(out, "study-straight")
    const killed = path.join(out, "study-killed")
    const once = (dir: string, delay: number | null) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, [BIN, "run", file, "--out", dir], { stdio: "ignore", env })
        const timer = delay === null ? undefined : setTimeout(() => child.kill("SIGKILL"), delay)
        child.on("exit", (code) => {
          clearTimeout(timer)
          resolve(code)
        })
      })
    const t0 = performance.now()
    expect(await once(straight, null)).toBe(0)
    const wall = performance.now() - t0
    const rng = new PythonRandom(8)
    let kills = 0
    for (;;) {
      // anywhere from start-up (~1.2 s) to most of an uninterrupted run later: an attempt spends
      // seconds starting and collecting demonstrations again before it gets further than the last,
      // so on a fast machine (a short uninterrupted run) kills at up to half of it took 3 to 25+
      // attempts to finish
      const code = await once(killed, 1200 + rng.random() * wall * 0.8)
      if (code === 0) break
      expect(code).toBeNull()
      kills++
      expect(kills).toBeLessThan(40)
    }
    console.log(`virl run: ${(wall / 1000).toFixed(1)} s uninterrupted, killed ${kills} times`)
    expect(kills).toBeGreaterThan(1)
    const records = (dir: string, f: string) => fs.readFileSync(path.join(dir, f), "utf8")
    expect(records(killed, "evals.jsonl")).toBe(records(straight, "evals.jsonl"))
    expect(records(killed, "kl.jsonl")).toBe(records(straight, "kl.jsonl"))
    for (const arm of ["sft", "rl", "rft"]) {
      const [a, b] = [path.join(killed, "seed-1", arm), path.join(straight, "seed-1", arm)]
      expect(bytes(a, "weights.bin").equals(bytes(b, "weights.bin"))).toBe(true)
      expect(metrics(a)).toEqual(metrics(b))
    }
    const results = (dir: string) => JSON.parse(records(dir, "results.json")) as Record<string, unknown>
    expect(results(killed)["arms"]).toEqual(results(straight)["arms"])
  }, 400_000)
})
