import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { metricsOf } from "../../../src/core/tracker.ts"
import { crc32c, make, readEvents } from "../../../src/plugins/tracker/tensorboard.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "virl-tb-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const records = [
  { kind: "train", arm: "rl", seed: 2, phase: "ppo", update: 1, samples: 256, loss: 0.5, clip_fraction: 0.1, learning_rate: 3e-4 },
  { kind: "train", arm: "rl", seed: 2, phase: "ppo", update: 2, samples: 256, loss: 0.25, clip_fraction: 0.2, learning_rate: 2e-4 },
  { kind: "eval", arm: "rl", seed: 2, step: 2, samples: 512, suite: "rule-ood", per_step_accuracy: 0.75, success_rate: 0.5 },
  { kind: "kl", arm: "rl", seed: 2, step: 2, samples: 512, reference: "base", kl: 1.5, kl_action: 1.25, inputs: 40 },
  { kind: "eval", arm: "sft", seed: 1, step: 1, samples: 100, suite: "indist", per_step_accuracy: 0.9, success_rate: 0.8 }
]

const hasTensorboard = spawnSync("python3", ["-c", "import tensorboard"], { encoding: "utf8" }).status === 0
if (!hasTensorboard) console.warn("skipped: reading the event files with TensorBoard's own reader needs python3 with tensorboard (not found)")

describe("the TensorBoard tracker", () => {
  it("computes CRC-32C as TFRecord does", () => {
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283)
  })

  it("writes one events file per arm and seed, with each record's scalars at its step", async () => {
    const tracker = make(dir, (line) => expect.fail(line))
    for (const r of records) await Effect.runPromise(tracker.log(r))
    const files = (sub: string) => fs.readdirSync(path.join(dir, "tb", sub)).map((f) => path.join(dir, "tb", sub, f))
    const [rl] = files("rl/seed-2")
    expect(path.basename(rl)).toMatch(/^events\.out\.tfevents\.\d+\./)
    const events = readEvents(rl)
    expect(events[0].fileVersion).toBe("brain.Event:2")
    expect(events.slice(1).map((e) => [e.step, e.scalars])).toEqual([
      [1, [["ppo/loss", 0.5], ["ppo/clip_fraction", Math.fround(0.1)], ["ppo/learning_rate", Math.fround(3e-4)], ["ppo/samples", 256]]],
      [2, [["ppo/loss", 0.25], ["ppo/clip_fraction", Math.fround(0.2)], ["ppo/learning_rate", Math.fround(2e-4)], ["ppo/samples", 256]]],
      [512, [["eval/rule-ood/per_step_accuracy", 0.75], ["eval/rule-ood/success_rate", 0.5]]],
      [512, [["kl/total", 1.5], ["kl/action", 1.25]]]
    ])
    expect(readEvents(files("sft/seed-1")[0]).slice(1).map((e) => e.scalars)).toEqual([[["eval/indist/per_step_accuracy", Math.fround(0.9)], [
      "eval/indist/success_rate",
      Math.fround(0.8)
    ]]])
  })

  it("shows each step once after a resume: the steps a resumed arm redoes are dropped from the earlier process's file", async () => {
    const runDir = path.join(dir, "resumed")
    const update = (n: number, loss: number) => ({ kind: "train", arm: "rl", seed: 1, phase: "ppo", update: n, samples: 256, loss })
    const first = make(runDir, (line) => expect.fail(line))
    for (const r of [update(1, 0.9), update(2, 0.8), update(3, 0.7)]) await Effect.runPromise(first.log(r))
    await Effect.runPromise(first.log({ kind: "eval", arm: "rl", seed: 1, step: 2, samples: 512, suite: "indist", per_step_accuracy: 0.5 }))
    // killed after update 3; its checkpoint was at update 2: the next process redoes update 3 on
    const second = make(runDir, (line) => expect.fail(line))
    for (const r of [update(3, 0.65), update(4, 0.6)]) await Effect.runPromise(second.log(r))
    const folder = path.join(runDir, "tb", "rl", "seed-1")
    const all = fs.readdirSync(folder).sort().flatMap((f) => readEvents(path.join(folder, f)))
    const losses = all.flatMap((e) => e.scalars.filter(([tag]) => tag === "ppo/loss").map(([, v]) => [e.step, v]))
    expect(losses).toEqual([[1, Math.fround(0.9)], [2, Math.fround(0.8)], [3, Math.fround(0.65)], [4, Math.fround(0.6)]])
    // an evaluation recorded before the interruption is kept (it is not redone)
    expect(all.some((e) => e.scalars.some(([tag]) => tag === "eval/indist/per_step_accuracy"))).toBe(true)
  })

  it("names a metric of a training record by its phase and steps it by update or epoch", () => {
    expect(metricsOf({ kind: "train", phase: "sft", epoch: 3, loss: 1 })).toEqual({ step: 3, scalars: [["sft/loss", 1]] })
  })

  it("warns once and goes on when the folder cannot be written", async () => {
    const blocked = path.join(dir, "blocked")
    fs.writeFileSync(blocked, "a file where the folder would go")
    const warnings: string[] = []
    const tracker = make(blocked, (line) => warnings.push(line))
    await Effect.runPromise(tracker.log(records[0]))
    await Effect.runPromise(tracker.log(records[1]))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/^TensorBoard: cannot write under .*blocked\/tb/)
  })

  it.skipIf(!hasTensorboard)("writes files TensorBoard's own reader reads", () => {
    const script = [
      "import json, sys",
      "from tensorboard.backend.event_processing.event_accumulator import EventAccumulator",
      "a = EventAccumulator(sys.argv[1]); a.Reload()",
      "print(json.dumps({t: [[e.step, e.value] for e in a.Scalars(t)] for t in a.Tags()['scalars']}))"
    ].join("\n")
    const r = spawnSync("python3", ["-c", script, path.join(dir, "tb", "rl", "seed-2")], { encoding: "utf8" })
    expect(r.status, r.stderr).toBe(0)
    const scalars = JSON.parse(r.stdout.trim().split("\n").at(-1)!)
    expect(scalars["ppo/loss"]).toEqual([[1, 0.5], [2, 0.25]])
    expect(scalars["eval/rule-ood/per_step_accuracy"]).toEqual([[512, 0.75]])
    expect(scalars["kl/total"]).toEqual([[512, 1.5]])
  })
})
