import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { writeReport } from "../../src/app/report.ts"
import { armOrder, runExperiment } from "../../src/app/run.ts"
import { readEvals, readKl } from "../../src/app/run-folder.ts"
import { readRecords } from "../../src/core/files.ts"
import { PAPER_SUITES, suiteLabel } from "../../src/app/suites.ts"
import { experiment, sweep, trials } from "../../src/core/experiment.ts"
import { Either } from "effect"
import { armComponents, DEFAULT_COMPONENTS } from "../../src/app/components.ts"
import { PRESETS, resolveConfig } from "../../src/app/config.ts"
import { armConfig } from "../../src/app/run.ts"
import * as Absolute from "../../src/plugins/action-space/absolute.ts"
import * as Relative from "../../src/plugins/action-space/relative.ts"
import * as AdamW from "../../src/plugins/optimizer/adamw.ts"
import * as Sgd from "../../src/plugins/optimizer/sgd.ts"
import * as Outcome from "../../src/plugins/reward/outcome.ts"
import * as Process from "../../src/plugins/reward/process.ts"
import { expectSameRuns } from "../support/processes.ts"
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

    const table = await writeReport(dir, "tiny", ["sft", "rl", "rft"], PAPER_SUITES.map(suiteLabel), ["sft", "rl", "rft"], { rl: "sft", rft: "sft" }, [1, 2])
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
    for (const f of ["indist", "rule_ood", "visual_ood", "per_step_accuracy", "pareto", "ood_vs_kl"]) {
      expect(fs.readFileSync(path.join(dir, "plots", `${f}.png`)).subarray(1, 4).toString()).toBe("PNG")
      expect(fs.readFileSync(path.join(dir, "plots", `${f}.svg`), "utf8")).toMatch(/^<svg[\s\S]*<\/svg>$/)
      expect(fs.readFileSync(path.join(dir, "plots", `${f}.csv`), "utf8")).toMatch(/^panel,series,x,y,low,high\n/)
    }

    // the same command again re-runs nothing
    const before = lines(path.join(dir, "evals.jsonl"))
    const klBefore = lines(path.join(dir, "kl.jsonl"))
    await Effect.runPromise(runExperiment(tiny, { out: dir, datasets }))
    expect(lines(path.join(dir, "evals.jsonl"))).toBe(before)
    expect(lines(path.join(dir, "kl.jsonl"))).toBe(klBefore)
    expect(readEvals(path.join(dir, "evals.jsonl")).filter((e) => e.arm === "rl" && e.step === 2)).toHaveLength(6)
  }, 240_000)

  it("runs seeds side by side (--parallel-seeds) to the same evaluations, KL and weights as one after another", async () => {
    const datasets = { root: city, train: city, eval: city, visualOod: city }
    const one = path.join(out, "sequential")
    const two = path.join(out, "parallel")
    await Effect.runPromise(runExperiment(tiny, { out: one, datasets, overrides: { num_updates: 1 } }))
    await Effect.runPromise(runExperiment(tiny, { out: two, datasets, overrides: { num_updates: 1 }, parallelSeeds: 2 }))
    expectSameRuns(one, two, [1, 2], ["sft", "rl", "rft"])
    // per seed: sft at 2 epochs, rl and rft at their one update; 3 suites each
    expect(readEvals(path.join(two, "evals.jsonl"))).toHaveLength(2 * 4 * 3)
  })

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
    const processVsOutcome = sweep({
      name: "process_vs_outcome",
      base: experiment({
        name: "short",
        seeds: [1],
        suites: ["indist"],
        arms: [{ name: "init", recipe: { kind: "sft" } }, { name: "rl", recipe: { kind: "ppo", from: "init" } }]
      }),
      compare: "rl",
      grid: {
        reward: [
          { label: "process", layers: { reward: Process.layer }, arms: ["rl"] },
          { label: "outcome", layers: { reward: Outcome.layer }, arms: ["rl"] }
        ]
      }
    })
    const ts = trials(processVsOutcome)
    expect(ts.map((t) => t.label)).toEqual(["reward=process", "reward=outcome"])
    for (const t of ts) {
      expect(t.experiment.arms.find((a) => a.name === "rl")!.sweep?.layers.reward).toBeDefined()
      expect(t.experiment.arms.find((a) => a.name === "init")!.sweep).toBeUndefined()
    }
    expect(armComponents(ts[1]!.experiment, ts[1]!.experiment.arms[1]!).reward).toBe(Outcome.layer)
    expect(armComponents(ts[1]!.experiment, ts[1]!.experiment.arms[0]!).reward).toBe(Process.layer)
  })

  it("combines sweep axes as a product, and resolves config and layers in the documented order", () => {
    const base = experiment({
      name: "p",
      seeds: [1],
      suites: ["indist"],
      arms: [
        {
          name: "a",
          recipe: { kind: "sft" },
          config: { num_updates: 2, "sft_config.epochs": 2 },
          layers: { optimizer: Sgd.layer },
          quick: { "sft_config.epochs": 3 }
        },
        { name: "b", recipe: { kind: "ppo", from: "a" } }
      ],
      config: { num_updates: 1, "sft_config.epochs": 1, "sft_config.routes": 1, num_steps: 7 },
      layers: { reward: Outcome.layer },
      quick: { "sft_config.routes": 3, num_updates: 4 }
    })
    const grid = sweep({
      name: "g",
      base,
      compare: "b",
      grid: {
        lr: [1e-3, 1e-2].map((lr) => ({ label: String(lr), config: { "optimizer_config.init_lr": lr, num_updates: 9 } })),
        opt: [
          { label: "adamw", layers: { optimizer: AdamW.layer } },
          { label: "sgd", layers: { optimizer: Sgd.layer }, arms: ["b"] }
        ]
      }
    })
    const all = trials(grid)
    expect(all.map((t) => t.label)).toEqual(["lr=0.001,opt=adamw", "lr=0.001,opt=sgd", "lr=0.01,opt=adamw", "lr=0.01,opt=sgd"])
    const t = all[1]!.experiment
    const [a, b] = [t.arms[0]!, t.arms[1]!]
    const config = (arm: typeof a, quick: boolean, overrides = {}) => Either.getOrThrow(armConfig(t, arm, { quick, overrides }, 5))
    // defaults < experiment < arm < sweep value < --quick (the experiment's, then the arm's) < command line
    expect(config(a, false).num_steps).toBe(7) // experiment over defaults
    expect(config(a, false).sft_config.epochs).toBe(2) // arm over experiment
    expect(config(a, false).num_updates).toBe(9) // sweep value over arm
    expect(config(a, true).num_updates).toBe(4) // --quick over sweep value
    expect([config(a, true).sft_config.epochs, config(b, true).sft_config.epochs]).toEqual([3, 1]) // the arm's quick over the experiment's, for that arm
    expect(config(a, true, { "sft_config.epochs": 5 }).sft_config.epochs).toBe(5)
    expect(config(a, true, { num_updates: 6 }).num_updates).toBe(6) // command line over all
    expect(config(a, false).optimizer_config.init_lr).toBe(1e-3)
    expect(config(a, false).seed).toBe(5)
    // layers: defaults < experiment < arm < sweep value; a value names the arms it changes
    expect(armComponents(t, a).reward).toBe(Outcome.layer)
    expect(armComponents(t, a).optimizer).toBe(Sgd.layer)
    expect(armComponents(t, b).optimizer).toBe(Sgd.layer)
    expect(armComponents(all[0]!.experiment, all[0]!.experiment.arms[0]!).optimizer).toBe(AdamW.layer)
    expect(armComponents(t, b).policy).toBe(DEFAULT_COMPONENTS.policy)
    // the reference's absolute_action key picks the action space
    const relative = Either.getOrThrow(armConfig(t, a, { overrides: { "env_config.absolute_action": false } }, 1))
    expect(armComponents(t, a, relative).actionSpace).toBe(Relative.layer)
    expect(armComponents(t, a, config(a, false)).actionSpace).toBe(Absolute.layer)
  })

  it("names a config value out of range at start-up", () => {
    const bad = (key: string, value: unknown) => {
      const r = resolveConfig(PRESETS.small, [{ source: "command line", values: { [key]: value } }])
      expect(Either.isLeft(r)).toBe(true)
      return String(Either.isLeft(r) ? r.left : "")
    }
    expect(bad("ppo_config.mini_batch_size", 0)).toMatch(/mini_batch_size[\s\S]*must be an integer ≥ 1/)
    expect(bad("num_processes", 0)).toMatch(/num_processes[\s\S]*must be an integer ≥ 1/)
    expect(bad("env_config.fov", 150)).toMatch(/fov[\s\S]*must be between 10 and 120/)
  })
})
