import { Effect, Either, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { PRESETS, resolveConfig, type RunConfig } from "../../src/app/config.ts"
import { evaluateSuite, loadPolicy } from "../../src/app/evaluate.ts"
import { baseDir, ensureBase } from "../../src/app/base-model.ts"
import { silent, trainPpo, trainRft, trainSft } from "../../src/app/train.ts"
import { loadCheckpoint } from "../../src/core/checkpoint.ts"
import { commandComponents, trainingLayer, withDefaults } from "../../src/app/components.ts"
import { Random, type RandomSource } from "../../src/core/random.ts"
import { PythonRandom } from "../../src/plugins/random/python-random.ts"
import { indist as indistSuite } from "../../src/app/suites.ts"
import { removeCity, tinyCity } from "../support/tiny-city.ts"

let city = ""
const out = fs.mkdtempSync(path.join(os.tmpdir(), "virl-train-"))
beforeAll(async () => {
  city = await tinyCity("nyc", 6)
})
afterAll(() => {
  removeCity(city)
  fs.rmSync(out, { recursive: true, force: true })
})

const configWith = (values: Record<string, unknown>): RunConfig =>
  Either.getOrThrow(
    resolveConfig(PRESETS.small, [
      {
        source: "test",
        values: { "sft_config.routes": 6, "sft_config.passes": 3, "sft_config.batch_size": 16, num_processes: 4, "eval_config.num_traj": 6, ...values }
      }
    ])
  )

const indist = (config: RunConfig, checkpoint: string) =>
  Effect.runPromise(
    withDefaults(
      config,
      Effect.flatMap(loadPolicy(checkpoint, config), (p) => evaluateSuite(config, p, indistSuite, { root: city, train: city, eval: city, visualOod: city }))
    )
  )

const metricLines = (dir: string) =>
  fs
    .readFileSync(path.join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>)

describe("training", () => {
  it("draws every generator from the Random layer: the same layer gives the same weights, another changes them", async () => {
    const config = configWith({ "sft_config.epochs": 2, "sft_config.passes": 1 })
    // Python's generator on other seeds: a Random layer of a user's
    const shifted: RandomSource = { name: "python-mt19937-shifted", make: (seed) => new PythonRandom(BigInt(seed) * 2n + 1n) }
    const train = (dir: string, random?: RandomSource) =>
      Effect.runPromise(
        Effect.provide(
          trainSft(config, city, path.join(out, dir), silent),
          trainingLayer(commandComponents(config, random === undefined ? {} : { random: Layer.succeed(Random, random) }))
        )
      )
    const weights = async (dir: string, random?: RandomSource) => fs.readFileSync(path.join(await train(dir, random), "weights.bin"))
    const a = await weights("random-a")
    expect((await weights("random-b")).equals(a)).toBe(true)
    expect((await weights("random-shifted", shifted)).equals(a)).toBe(false)
  }, 120_000)

  it("SFT drives the small policy to at least 95% per-step accuracy on its training routes", async () => {
    const config = configWith({ "sft_config.epochs": 20 })
    const ckpt = await Effect.runPromise(withDefaults(config, trainSft(config, city, path.join(out, "sft"), silent)))
    const metrics = await indist(config, ckpt)
    expect(metrics.per_step_accuracy).toBeGreaterThanOrEqual(0.95)
    expect(metricLines(path.join(out, "sft")).map((l) => l["epoch"])).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
  }, 120_000)

  it("PPO from a weak start raises the mean reward, saving a checkpoint every save_every updates", async () => {
    const config = configWith({
      "sft_config.epochs": 1,
      num_steps: 128,
      num_updates: 12,
      save_every: 5,
      "optimizer_config.init_lr": 1e-3,
      "optimizer_config.end_lr": 1e-3
    })
    const weak = await Effect.runPromise(withDefaults(config, trainSft(config, city, path.join(out, "weak"), silent)))
    const before = await indist(config, weak)
    const saved: string[] = []
    const rl = path.join(out, "rl")
    const ckpt = await Effect.runPromise(withDefaults(config, trainPpo(config, weak, city, rl, { ...silent, log: (line) => saved.push(line) })))
    const after = await indist(config, ckpt)
    // measured on seeds 42, 1, 2: reward −0.33/−0.83/−1.67 → 1.50/0.67/1.17, per-step accuracy +0.10/+0.09/+0.27
    expect(after.mean_reward).toBeGreaterThan(before.mean_reward + 1)
    expect(after.per_step_accuracy).toBeGreaterThan(before.per_step_accuracy + 0.05)
    const updates = metricLines(rl)
    const rollout = (xs: Array<Record<string, unknown>>) => xs.reduce((s, l) => s + Number(l["mean_step_reward"]), 0) / xs.length
    expect(rollout(updates.slice(-3))).toBeGreaterThan(rollout(updates.slice(0, 3)))
    expect((await Effect.runPromise(loadCheckpoint(ckpt))).progress).toEqual({ phase: "ppo", done: 12 })
    // SFT pointed at this PPO folder: refused, naming the checkpoint, before it writes a thing there
    const configBefore = fs.readFileSync(path.join(rl, "config.json"), "utf8")
    const refused = await Effect.runPromise(Effect.flip(withDefaults(config, trainSft(config, city, rl, silent))))
    expect(refused).toMatchObject({ _tag: "CheckpointError", path: ckpt })
    expect(String(refused)).toContain("holds a ppo checkpoint; use another --out for sft")
    expect(fs.readFileSync(path.join(rl, "config.json"), "utf8")).toBe(configBefore)
    expect(saved.filter((l) => l.startsWith("saved"))).toEqual([
      "saved checkpoint at update 5",
      "saved checkpoint at update 10",
      "saved checkpoint at update 12"
    ])
    expect(updates.map((l) => l["update"])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
  }, 180_000)

  it("resumes an interrupted PPO run from its last saved update", async () => {
    const config = configWith({ num_steps: 32, num_updates: 2, save_every: 1 })
    const init = path.join(out, "weak", "checkpoint")
    const dir = path.join(out, "resume")
    await Effect.runPromise(withDefaults(config, trainPpo(config, init, city, dir, silent)))
    const longer = { ...config, num_updates: 3 }
    await Effect.runPromise(withDefaults(longer, trainPpo(longer, init, city, dir, silent)))
    expect(metricLines(dir).map((l) => l["update"])).toEqual([1, 2, 3])
    expect((await Effect.runPromise(loadCheckpoint(path.join(dir, "checkpoint")))).progress.done).toBe(3)
    await Effect.runPromise(withDefaults(longer, trainPpo(longer, init, city, dir, silent)))
    expect(metricLines(dir).length).toBe(3)
  }, 120_000)

  it("RFT fine-tunes on its own outputs that the environment verified, and resumes like PPO", async () => {
    const config = configWith({ num_steps: 64, num_updates: 2, save_every: 1 })
    const dir = path.join(out, "rft")
    const ckpt = await Effect.runPromise(withDefaults(config, trainRft(config, path.join(out, "weak", "checkpoint"), "self", city, dir, silent)))
    const rounds = metricLines(dir)
    expect(rounds.map((l) => l["update"])).toEqual([1, 2])
    for (const r of rounds) {
      // kept: exactly the verified-correct share of the rollout
      expect(Number(r["kept"])).toBe(Math.round(Number(r["correct_step_rate"]) * Number(r["samples"])))
      expect(Number(r["kept"])).toBeLessThan(Number(r["samples"]))
    }
    expect((await Effect.runPromise(loadCheckpoint(ckpt))).progress).toEqual({ phase: "rft", done: 2 })
    // samples written by another, fixed policy (the base in sft_vs_rl): its verified outputs teach this one
    const fixed = path.join(out, "rft-fixed")
    await Effect.runPromise(
      withDefaults(config, trainRft(config, path.join(out, "weak", "checkpoint"), path.join(out, "sft", "checkpoint"), city, fixed, silent))
    )
    const taught = metricLines(fixed)
    expect(taught.every((r) => Number(r["kept"]) > 0)).toBe(true)
    // the fixed sampler (SFT to ≥95%) is right far more often than the weak policy it teaches
    expect(Number(taught[1]["correct_step_rate"])).toBeGreaterThan(Number(rounds[1]["correct_step_rate"]))
  }, 120_000)

  it("builds the base model once into the cache, reuses it, and builds another for another recipe", async () => {
    const previous = process.env["VIRL_CACHE"]
    process.env["VIRL_CACHE"] = path.join(out, "cache")
    try {
      const config = configWith({
        "pretrain_config.styles": 1,
        "pretrain_config.routes": 2,
        "pretrain_config.epochs": 1,
        "pretrain_config.batch_size": 32
      })
      const logged: string[] = []
      const progress = { ...silent, log: (line: string) => logged.push(line) }
      // two builders at once: one builds, the other waits for it
      const [dir, same] = await Effect.runPromise(
        withDefaults(config, Effect.all([ensureBase(config, progress), ensureBase(config, progress)], { concurrency: 2 }))
      )
      expect(same).toBe(dir)
      expect(logged.filter((l) => l.startsWith("building the base model"))).toHaveLength(1)
      expect(logged.some((l) => l.startsWith(`waiting for process ${process.pid}`))).toBe(true)
      expect(fs.existsSync(`${dir}.lock`)).toBe(false)
      expect(dir).toBe(baseDir(config))
      expect(dir.startsWith(path.join(out, "cache"))).toBe(true)
      const manifest = (await Effect.runPromise(loadCheckpoint(path.join(dir, "checkpoint")))).progress
      expect(manifest).toEqual({ phase: "pretrain", done: 1 })
      // both rule sets, from every route of the mixture
      expect(logged.some((l) => /pretrain: \d+ expert steps from 2 source\(s\)/.test(l))).toBe(true)
      const built = logged.length
      expect(await Effect.runPromise(withDefaults(config, ensureBase(config, progress)))).toBe(dir)
      expect(logged.length).toBe(built)
      const other = configWith({ "pretrain_config.styles": 1, "pretrain_config.routes": 2, "pretrain_config.epochs": 2, "pretrain_config.batch_size": 32 })
      expect(baseDir(other)).not.toBe(dir)
    } finally {
      if (previous === undefined) delete process.env["VIRL_CACHE"]
      else process.env["VIRL_CACHE"] = previous
    }
  }, 180_000)

  it("loads a checkpoint with the architecture it stores, and names one of another version", async () => {
    const small = configWith({ "sft_config.epochs": 1, "policy_config.embedding": 16, "policy_config.hidden": 24 })
    const ckpt = await Effect.runPromise(withDefaults(small, trainSft(small, city, path.join(out, "narrow"), silent)))
    // this run's policy_config is the default (wider) one: the checkpoint's own is used
    const metrics = await indist(configWith({}), ckpt)
    expect(metrics.num_traj).toBe(6)
    const copy = path.join(out, "old-version")
    fs.cpSync(ckpt, copy, { recursive: true })
    const manifest = JSON.parse(fs.readFileSync(path.join(copy, "checkpoint.json"), "utf8"))
    delete manifest.policy.config.model.shape.maxObservations
    fs.writeFileSync(path.join(copy, "checkpoint.json"), JSON.stringify(manifest))
    const error = await Effect.runPromise(Effect.flip(withDefaults(configWith({}), loadPolicy(copy, configWith({})))))
    // the error names the checkpoint as a field a caller can act on, and says why in words
    expect(error).toMatchObject({ _tag: "CheckpointError", path: copy })
    expect(String(error)).toContain(`${copy}: the checkpoint cannot be loaded: its policy config is not this version's`)
    expect(String(error)).toContain("maxObservations")
  }, 60_000)

  it("names the file of a corrupt checkpoint", async () => {
    const copy = path.join(out, "corrupt")
    fs.cpSync(path.join(out, "weak", "checkpoint"), copy, { recursive: true })
    const weights = path.join(copy, "weights.bin")
    fs.truncateSync(weights, 100)
    const error = await Effect.runPromise(Effect.flip(loadCheckpoint(copy)))
    expect(String(error)).toMatch(/weights\.bin holds 100 bytes/)
    fs.writeFileSync(path.join(copy, "checkpoint.json"), "{ not json")
    expect(String(await Effect.runPromise(Effect.flip(loadCheckpoint(copy))))).toMatch(/checkpoint\.json: corrupt manifest/)
  })
})
