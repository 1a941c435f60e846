import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runExperiment } from "../../src/app/run.ts"
import { readEvals } from "../../src/app/run-folder.ts"
import { indist } from "../../src/app/suites.ts"
import { loadCheckpoint } from "../../src/core/checkpoint.ts"
import { experiment, type SuiteSpec } from "../../src/core/experiment.ts"
import type { Waypoint } from "../../src/core/rail.ts"
import * as Clock from "../../src/plugins/action-space/clock.ts"
import * as Sgd from "../../src/plugins/optimizer/sgd.ts"
import { listedActions } from "../../src/plugins/policy/prompt-reader.ts"
import * as TfPolicy from "../../src/plugins/policy/tfjs/layer.ts"
import { removeCity, tinyCity } from "../support/tiny-city.ts"

/** The shipped plugin examples, each swapped in by one line of an experiment, in one tiny run. */
let city = ""
const out = fs.mkdtempSync(path.join(os.tmpdir(), "virl-plugins-"))
beforeAll(async () => {
  city = await tinyCity("nyc", 4)
})
afterAll(() => {
  removeCity(city)
  fs.rmSync(out, { recursive: true, force: true })
})

const point = (relativeAction: string): Waypoint => ({
  geocode: [0, 0],
  heading: 0,
  absoluteAction: "forward()",
  relativeAction,
  observation: "",
  intersectionObservation: "",
  instruction: "",
  instructionIndex: 1,
  interpolated: false
})

describe("plugins as layers", () => {
  it("the clock-face action space names relative turns by hours, and policies read its list", () => {
    expect(Clock.clock.groundTruth(point("turn_direction(right)"))).toBe("turn_direction(3 o'clock)")
    expect(Clock.clock.groundTruth(point("turn_direction(slightly left)"))).toBe("turn_direction(11 o'clock)")
    expect(Clock.clock.groundTruth(point("stop()"))).toBe("stop()")
    expect(listedActions(`[Action space]\n${Clock.clock.promptText}\n\n[Output]`)).toEqual(Clock.clock.actions)
  })

  it("a fourth suite, another optimizer and a smaller policy run from one experiment's lines", async () => {
    const clockOod: SuiteSpec = { name: "clock-ood", title: "Clock OOD", dataset: "eval", actionSpace: Clock.layer }
    const small = TfPolicy.layer({ embedding: 24, hidden: 48, patch_features: 12 })
    const tiny = experiment({
      name: "plugins",
      seeds: [1],
      suites: [indist, clockOod],
      evaluations: 1,
      arms: [
        { name: "sft", recipe: { kind: "sft" }, layers: { policy: small } },
        { name: "rl", recipe: { kind: "ppo", from: "sft" } }
      ],
      layers: { optimizer: Sgd.layer },
      config: { "sft_config.routes": 4, "sft_config.epochs": 2, num_steps: 16, num_updates: 1, num_processes: 4, "eval_config.num_traj": 3 }
    })
    const dir = path.join(out, "run")
    await Effect.runPromise(runExperiment(tiny, { out: dir, datasets: { root: city, train: city, eval: city, visualOod: city } }))
    const evals = readEvals(path.join(dir, "evals.jsonl"))
    expect(evals.filter((e) => e.suite === "clock-ood").map((e) => e.arm)).toEqual(["sft", "rl"])
    for (const e of evals) expect(e.metrics.num_traj).toBe(3)
    // the clock suite's log asks in clock words
    const log = fs.readFileSync(path.join(dir, "seed-1", "rl", "eval-logs", "clock-ood-step1.episodes.jsonl"), "utf8")
    expect(log).toMatch(/o'clock/)
    for (const arm of ["sft", "rl"]) {
      const ckpt = await Effect.runPromise(loadCheckpoint(path.join(dir, "seed-1", arm, "checkpoint")))
      // the sft arm names the small policy layer; the rl arm keeps the default layer, which loads what the checkpoint holds
      const key = arm === "sft" ? { policyKey: JSON.stringify({ embedding: 24, hidden: 48, patch_features: 12 }) } : {}
      expect(ckpt.meta["layers"]).toEqual({ policy: TfPolicy.POLICY_NAME, ...key, optimizer: Sgd.NAME })
      // the smaller architecture, carried by the checkpoint into the arm trained from it
      expect((ckpt.policy.config as { model: { hidden: number } }).model.hidden).toBe(48)
      // SGD keeps one velocity per parameter, no second moment
      expect([...ckpt.optimizer!.moments.values()].every((m) => m.v.length === 0 && m.m.length > 0)).toBe(true)
    }
  }, 120_000)
})
