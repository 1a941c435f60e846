import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { writeReport } from "../../src/app/report.ts"
import { armOrder, readEvals, readKl, runExperiment } from "../../src/app/run.ts"
import { readRecords } from "../../src/core/files.ts"
import { experiment, trials } from "../../src/core/experiment.ts"
import processVsOutcome from "../../experiments/process_vs_outcome.ts"
import { removeCity, tinyCity } from "../support/tiny-city.ts"

let city = ""
const out = fs.mkdtempSync(path.join(os.tmpdir(), "virl-run-"))
beforeAll(async () => {
  city = await tinyCity("nyc", 4)
})
afterAll(() => {
  removeCity(city)
  fs.rmSync(out, { recursive: true, force: true })
})

const tiny = experiment({
  name: "tiny",
  seeds: [1, 2],
  suites: ["indist", "rule-ood", "visual-ood"],
  evaluations: 2,
  klReference: "sft",
  arms: [
    { name: "sft", recipe: { kind: "sft" } },
    { name: "rl", recipe: { kind: "ppo", from: "sft" } },
    { name: "rft", recipe: { kind: "rft", from: "sft", samples: "sft" } }
  ],
  config: {
    "kl_config.routes": 2,
    "sft_config.routes": 4,
    "sft_config.epochs": 2,
    num_steps: 32,
    num_updates: 2,
    num_processes: 4,
    "eval_config.num_traj": 3,
    "eval_config.num_traj_visual": 3
  }
})

const lines = (file: string) => fs.readFileSync(file, "utf8").trim().split("\n").length

describe("virl run", () => {
  it("trains every arm for every seed, evaluates the suites and writes results.json, the table and plots", async () => {
    const datasets = { root: city, train: city, eval: city, visualOod: city }
    const dir = path.join(out, "run")
    // first as if interrupted after one PPO update, then the full command
    await Effect.runPromise(runExperiment(tiny, { out: dir, datasets, seeds: [1], overrides: { num_updates: 1 } }))
    await Effect.runPromise(runExperiment(tiny, { out: dir, datasets }))
    const rl = fs.readFileSync(path.join(dir, "seed-1", "rl", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).update)
    expect(rl).toEqual([1, 2])
    expect(lines(path.join(dir, "seed-1", "sft", "metrics.jsonl"))).toBe(2)

    const table = await writeReport(dir, "tiny", ["sft", "rl", "rft"], tiny.suites, ["sft", "rl", "rft"], { rl: "sft", rft: "sft" }, [1, 2])
    const results = JSON.parse(fs.readFileSync(path.join(dir, "results.json"), "utf8"))
    expect(results.experiment).toBe("tiny")
    expect(results.seeds).toEqual([1, 2])
    // KL(sft ‖ arm) at every evaluation point of the arms trained from sft, in the log and the results
    const kl = readKl(path.join(dir, "kl.jsonl"))
    for (const arm of ["rl", "rft"]) {
      expect(kl.filter((k) => k.arm === arm).map((k) => `${k.seed}:${k.step}`).sort()).toEqual(["1:1", "1:2", "2:1", "2:2"])
      expect(results.kl[arm].map((p: { step: number }) => p.step)).toEqual([1, 2])
      expect(results.arms[arm].kl.total.per_seed).toHaveLength(2)
    }
    for (const k of kl) {
      expect(k.kl).toBeGreaterThanOrEqual(0)
      expect(k.kl).toBeCloseTo(Object.values(k.parts).reduce((s, v) => s + v, 0), 9)
      expect(Object.keys(k.parts).sort()).toEqual(["action", "instruction", "observation"])
    }
    expect(kl.some((k) => k.arm === "sft")).toBe(false)
    expect(table).toMatch(/KL\(sft ‖ arm\)/)
    expect(table).toMatch(/\| rl \| 2 \|/)
    for (const arm of ["sft", "rl"]) {
      for (const suite of ["indist", "rule_ood", "visual_ood"]) {
        const acc = results.arms[arm][suite].per_step_accuracy
        expect(acc.per_seed).toHaveLength(2)
        expect(acc.mean).toBeCloseTo((acc.per_seed[0] + acc.per_seed[1]) / 2, 12)
        expect(results.arms[arm][suite].success_rate.per_seed).toHaveLength(2)
      }
    }
    expect(table).toMatch(/\| sft \| 2 \| \d+\.\d ± \d+\.\d/)
    for (const f of ["indist.png", "rule_ood.png", "visual_ood.png", "per_step_accuracy.png", "pareto.png", "ood_vs_kl.png"]) {
      expect(fs.readFileSync(path.join(dir, "plots", f)).subarray(1, 4).toString()).toBe("PNG")
    }

    // the same command again re-runs nothing
    const before = lines(path.join(dir, "evals.jsonl"))
    const klBefore = lines(path.join(dir, "kl.jsonl"))
    await Effect.runPromise(runExperiment(tiny, { out: dir, datasets }))
    expect(lines(path.join(dir, "evals.jsonl"))).toBe(before)
    expect(lines(path.join(dir, "kl.jsonl"))).toBe(klBefore)
    expect(readEvals(path.join(dir, "evals.jsonl")).filter((e) => e.arm === "rl" && e.step === 2)).toHaveLength(6)
  }, 240_000)

  it("drops a last line cut by an interruption and names the file and line of a damaged one", () => {
    const file = path.join(out, "records.jsonl")
    fs.writeFileSync(file, '{"a":1}\n{"a":2}\n{"a":')
    expect(readRecords(file)).toEqual([{ a: 1 }, { a: 2 }])
    expect(fs.readFileSync(file, "utf8")).toBe('{"a":1}\n{"a":2}\n')
    fs.writeFileSync(file, '{"a":1}\nnot json\n{"a":3}\n')
    expect(() => readRecords(file)).toThrow(/records\.jsonl, line 2: not a JSON record/)
  })

  it("orders arms by what they start from and names an unknown one", () => {
    expect(armOrder([{ name: "b", recipe: { kind: "ppo", from: "a" } }, { name: "a", recipe: { kind: "sft" } }]).map((a) => a.name)).toEqual(["a", "b"])
    expect(() => armOrder([{ name: "b", recipe: { kind: "ppo", from: "x" } }])).toThrow(/unknown arm "x"; arms: b/)
  })

  it("expands a sweep's grid into trials with the layer swapped in the RL arm", () => {
    const ts = trials(processVsOutcome)
    expect(ts.map((t) => t.label)).toEqual(["reward=process", "reward=outcome"])
    for (const t of ts) {
      expect(t.experiment.arms.find((a) => a.name === "rl")!.reward).toBeDefined()
      expect(t.experiment.arms.find((a) => a.name === "init")!.reward).toBeUndefined()
    }
  })
})
