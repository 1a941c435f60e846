import { Effect, Either, Layer } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { PRESETS, resolveConfig, type RunConfig } from "../../src/app/config.ts"
import { shardingLayer, withDefaults } from "../../src/app/components.ts"
import { evaluateSuite, loadPolicy } from "../../src/app/evaluate.ts"
import { environmentLayer } from "../../src/app/services.ts"
import { silent, trainPpo, trainSft } from "../../src/app/train.ts"
import { indist as indistSuite } from "../../src/app/suites.ts"
import { Environment, type Observation, type Transition } from "../../src/core/environment.ts"
import { PythonRandom } from "../../src/plugins/random/python-random.ts"
import { oracleText } from "../../src/plugins/policy/oracle.ts"
import * as Relative from "../../src/plugins/action-space/relative.ts"
import * as Outcome from "../../src/plugins/reward/outcome.ts"
import { removeCity, tinyCity } from "../support/tiny-city.ts"
import { layer as PythonRandomLayer } from "../../src/plugins/random/python-random.ts"

let city = ""
const out = fs.mkdtempSync(path.join(os.tmpdir(), "virl-sharding-"))
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
        values: {
          "sft_config.routes": 6,
          "sft_config.passes": 2,
          "sft_config.batch_size": 16,
          "sft_config.epochs": 2,
          num_processes: 4,
          num_steps: 48,
          num_updates: 2,
          "eval_config.num_traj": 6,
          ...values
        }
      }
    ])
  )

const digest = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex")
const metrics = (dir: string) =>
  fs
    .readFileSync(path.join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    // everything but timings
    .map((l) => Object.fromEntries(Object.entries(JSON.parse(l) as Record<string, unknown>).filter(([k]) => !/time|second|wall|elapsed/.test(k))))

/** What a step shows, in a comparable form (the picture as a digest). */
const shown = (o: Observation<Record<string, unknown>> | null) =>
  o === null
    ? null
    : {
      chat: o.chat,
      info: o.info,
      trace: o.trace,
      image: o.image === null ? null : [o.image.width, o.image.height, createHash("sha1").update(o.image.rgb).digest("hex")]
    }
const transition = (t: Transition<Record<string, unknown>> | null) =>
  t === null ? null : { o: shown(t.observation), reward: t.reward, terminated: t.terminated, truncated: t.truncated, verdict: t.verdict }

describe("the workers sharding", () => {
  it("steps environments in threads exactly as in process: draws, pictures, verdicts, rewards, snapshots", async () => {
    const config = configWith({ "env_config.verify_iter": 2 })
    // a long scripted session over 5 slots: resets from the generator and by route, right and wrong answers
    const drive = Effect.gen(function*() {
      const env = yield* Environment
      const answers = new PythonRandom(11)
      const trace: unknown[] = []
      const current: Array<Observation<Record<string, unknown>> | null> = []
      for (let slot = 0; slot < env.numEnvs; slot++) {
        const o = yield* env.reset(slot, slot % 2 === 0 ? undefined : { routeIndex: slot })
        current.push(o)
        trace.push(shown(o))
      }
      let snapshot: unknown
      for (let t = 0; t < 40; t++) {
        const outputs = current.map((o) => {
          if (o === null) return null
          const r = answers.random()
          return r < 0.6 ? oracleText(o.info) : r < 0.8 ? JSON.stringify({ action: "turn_direction(left)" }) : "not json at all"
        })
        const transitions = yield* env.step(outputs)
        trace.push(transitions.map(transition))
        for (const [slot, tr] of transitions.entries()) {
          if (tr === null) continue
          if (tr.terminated || tr.truncated) {
            const o = yield* env.reset(slot)
            current[slot] = o
            trace.push(shown(o))
          } else current[slot] = tr.observation
        }
        if (t === 20) snapshot = env.snapshot()
      }
      return { trace, snapshot, end: env.snapshot() }
    })
    const run = (sharding: string) =>
      Effect.runPromise(
        Effect.scoped(
          Effect.provide(
            drive,
            environmentLayer(config, city, { numEnvs: 5, seed: 9, instructionVariants: true }).pipe(
              Layer.provide(Layer.mergeAll(Relative.layer, Outcome.layer, shardingLayer(sharding), PythonRandomLayer))
            )
          )
        )
      )
    const local = await run("local")
    const threaded = await run("workers:2")
    expect(threaded.trace).toEqual(local.trace)
    expect(threaded.snapshot).toEqual(local.snapshot)
    expect(threaded.end).toEqual(local.end)
    // a snapshot taken in threads restores in process (and the converse): checkpoints move between them
    const restoreIn = (sharding: string, snapshot: unknown) =>
      Effect.runPromise(
        Effect.scoped(
          Effect.provide(
            Effect.flatMap(Environment, (env) => env.restore(snapshot as never)).pipe(Effect.map((os) => os.map(shown))),
            environmentLayer(config, city, { numEnvs: 5, seed: 9, instructionVariants: true }).pipe(
              Layer.provide(Layer.mergeAll(Relative.layer, Outcome.layer, shardingLayer(sharding), PythonRandomLayer))
            )
          )
        )
      )
    expect(await restoreIn("local", threaded.snapshot)).toEqual(await restoreIn("workers:3", local.snapshot))
  }, 120_000)

  it("SFT, PPO and evaluation under workers:2 give the weights, metrics and logs of local", async () => {
    const runAll = async (sharding: string) => {
      const config = configWith({ sharding })
      const dir = path.join(out, sharding.replace(":", "-"))
      const sft = await Effect.runPromise(withDefaults(config, trainSft(config, city, path.join(dir, "sft"), silent)))
      const ppo = await Effect.runPromise(withDefaults(config, trainPpo(config, sft, city, path.join(dir, "ppo"), silent)))
      const logFile = path.join(dir, "eval.jsonl")
      const evaluated = await Effect.runPromise(
        withDefaults(
          config,
          Effect.flatMap(
            loadPolicy(ppo, config),
            (p) => evaluateSuite(config, p, indistSuite, { root: city, train: city, eval: city, visualOod: city }, { logFile })
          )
        )
      )
      const lines = fs.readFileSync(logFile, "utf8").trim().split("\n")
      return {
        sft: digest(path.join(sft, "weights.bin")),
        ppo: digest(path.join(ppo, "weights.bin")),
        optimizer: digest(path.join(ppo, "optimizer.bin")),
        sftMetrics: metrics(path.join(dir, "sft")),
        ppoMetrics: metrics(path.join(dir, "ppo")),
        evaluated,
        lines
      }
    }
    const local = await runAll("local")
    const workers = await runAll("workers:2")
    expect(workers).toEqual(local)
    expect(local.lines.length).toBeGreaterThan(6)
  }, 240_000)
})
