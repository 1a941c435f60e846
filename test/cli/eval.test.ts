import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { removeCity, tinyCity } from "../support/tiny-city.ts"

const BIN = path.resolve(import.meta.dirname, "../../bin/virl.mjs")
const virl = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8" })

let city = ""
beforeAll(async () => {
  city = await tinyCity("sf", 3)
})
afterAll(() => removeCity(city))

describe("virl eval", () => {
  it("scores the oracle 1.0 and prints the metrics as JSON on the last line", () => {
    const run = virl("eval", "--policy", "oracle", "--suite", "visual-ood", "--data", city, "--json")
    expect(run.status).toBe(0)
    const metrics = JSON.parse(run.stdout.trim().split("\n").pop()!)
    expect(Object.keys(metrics).sort()).toEqual(
      ["by_action", "mean_reward", "mean_steps", "mean_verification_steps", "num_traj", "per_step_accuracy", "std_reward", "success_rate"].sort()
    )
    expect([metrics.per_step_accuracy, metrics.success_rate, metrics.num_traj]).toEqual([1, 1, 3])
    // per ground-truth action: the oracle answers every one right, and no route fails
    const classes = metrics.by_action as Record<string, { answers: number; correct: number; failed_here: number }>
    expect(classes["forward"]!.answers).toBeGreaterThan(0)
    expect(classes["stop"]!.answers).toBe(3)
    for (const c of Object.values(classes)) expect([c.correct, c.failed_here]).toEqual([c.answers, 0])
  })

  it("rejects an unknown config key and a missing checkpoint with clear errors", () => {
    const bad = virl("eval", "--policy", "oracle", "--suite", "indist", "--data", city, "--eval_config.num_trajs=3")
    expect(bad.status).not.toBe(0)
    expect(bad.stderr).toMatch(/unknown key "eval_config.num_trajs"; did you mean eval_config.num_traj/)
    const missing = virl("eval", "--policy", path.join(city, "nope"), "--suite", "indist", "--data", city)
    expect(missing.status).not.toBe(0)
    expect(missing.stderr).toMatch(/not a checkpoint: checkpoint.json is missing/)
  })

  it("refuses an out-of-range value at start-up as one line naming the key, and lists the dotted keys in --help", () => {
    const fov = virl("eval", "--policy", "oracle", "--suite", "indist", "--data", city, "--env_config.fov=150")
    expect(fov.status).not.toBe(0)
    expect(fov.stderr.trim()).toBe("error: command line: env_config.fov: must be between 10 and 120")
    expect(fov.stderr).not.toMatch(/\n\s+at /)
    const help = virl("eval", "--help")
    expect(help.stdout).toMatch(/--ppo_config\.mini_batch_size=32/)
    expect(help.stdout).toMatch(/--env_config\.fov=90/)
    // a key a line, grouped by section, with what each allows
    expect(help.stdout).toMatch(/\n {2}--backend="auto" +auto, wasm, cpu, native or webgpu/)
    expect(help.stdout).toMatch(/\nppo_config:\n {2}--ppo_config\.clip_param=0\.1 +> 0\n/)
    expect(help.stdout).toMatch(/--pretrain_config\.descriptions="varied" +varied, oracle/)
  })
})
