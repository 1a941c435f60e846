/**
 * `npm run bench:sharding`: what the workers sharding buys on this machine — environment steps/s
 * (answers from a cheap scripted policy: the environments alone), PPO rollout steps/s and
 * evaluation episodes/s (the small tfjs policy answering every slot at once in this thread) — for
 * local and for 2, 4, … worker threads, as ratios to local measured in the same run.
 *
 * Env: WORKERS=2,4 (default: powers of two up to the cores), NUM_ENVS=16, SECONDS=4 per figure,
 * RESOLUTIONS=32,224 (the study's small preset uses 32; the paper's views are 224 or more).
 */
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PRESETS, type RunConfig } from "../src/app/config.ts"
import { shardingLayer } from "../src/app/components.ts"
import { environmentLayer, policySettings } from "../src/app/services.ts"
import { Environment, type Observation } from "../src/core/environment.ts"
import { runSuite } from "../src/core/evaluation.ts"
import { RolloutCollector } from "../src/core/rollout.ts"
import * as Absolute from "../src/plugins/action-space/absolute.ts"
import { synthesize } from "../src/plugins/dataset/synth/generate.ts"
import { oracleText } from "../src/plugins/policy/oracle.ts"
import * as Backend from "../src/plugins/policy/tfjs/backend.ts"
import * as TfPolicy from "../src/plugins/policy/tfjs/layer.ts"
import { PythonRandom } from "../src/plugins/random/python-random.ts"
import * as Process from "../src/plugins/reward/process.ts"
import { layer as PythonRandomLayer } from "../src/plugins/random/python-random.ts"

const cores = os.availableParallelism()
const list = (v: string | undefined, fallback: number[]) => (v === undefined || v === "" ? fallback : v.split(",").map(Number))
const powers = [2, 4, 8, 16, 32].filter((n) => n <= cores)
const WORKERS = list(process.env["WORKERS"], powers.length > 0 ? powers : [2])
const NUM_ENVS = Number(process.env["NUM_ENVS"] ?? 16)
const SECONDS = Number(process.env["SECONDS"] ?? 4)
const RESOLUTIONS = list(process.env["RESOLUTIONS"], [32, 224])

/**
 * Runs `once` (returning the units it did) until SECONDS have passed, after as long a warm-up
 * (panorama caches filled: the steady state of a long run, for every layer alike).
 */
const rate = (once: () => Effect.Effect<number, unknown>) =>
  Effect.gen(function*() {
    const w0 = performance.now()
    while (performance.now() - w0 < SECONDS * 1000) yield* once()
    let units = 0
    const t0 = performance.now()
    while (performance.now() - t0 < SECONDS * 1000) units += yield* once()
    return units / ((performance.now() - t0) / 1000)
  })

const main = async () => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "virl-bench-sharding-"))
  const dir = path.join(scratch, "nyc")
  await Effect.runPromise(synthesize({ city: "nyc", seed: 1, splits: [{ dir, routes: 24 }] }))
  const { tf, name: backend } = await Effect.runPromise(Backend.make("wasm"))
  console.log(`workers sharding — ${cores} cores, Node ${process.version}, ${NUM_ENVS} environments, policy on ${backend}, ${SECONDS} s per figure`)
  for (const resolution of RESOLUTIONS) {
    const config: RunConfig = { ...PRESETS.small, num_processes: NUM_ENVS, env_config: { ...PRESETS.small.env_config, resolution } }
    const policy = TfPolicy.make(tf, TfPolicy.policyConfigOf(policySettings({ ...config, env_config: { ...PRESETS.small.env_config } })), new PythonRandom(1))
    const measure = (sharding: string) =>
      Effect.runPromise(
        Effect.scoped(
          Effect.gen(function*() {
            const env = yield* Environment
            // environments alone: a scripted answer per slot (mostly right, sometimes not)
            const answers = new PythonRandom(3)
            const current: Array<Observation<Record<string, unknown>>> = []
            for (let s = 0; s < env.numEnvs; s++) current.push(yield* env.reset(s))
            const envRate = yield* rate(() =>
              Effect.gen(function*() {
                const ts = yield* env.step(current.map((o) => (answers.random() < 0.8 ? oracleText(o.info) : '{"action": "forward()"}')))
                for (const [s, t] of ts.entries()) current[s] = t === null || t.terminated || t.truncated ? yield* env.reset(s) : t.observation
                return env.numEnvs
              })
            )
            const collector = new RolloutCollector(env, policy, { properTimeLimits: false, act: { temperature: 1, greedy: false } })
            const rolloutRate = yield* rate(() => Effect.map(collector.collect(env.numEnvs * 4), (r) => r.samples.length))
            const evalRate = yield* rate(() =>
              Effect.as(runSuite(env, policy, { numTraj: env.numEnvs, order: false, act: { temperature: 1, greedy: true } }), env.numEnvs)
            )
            return { envRate, rolloutRate, evalRate }
          }).pipe(
            Effect.provide(
              environmentLayer(config, dir, { numEnvs: NUM_ENVS, seed: 5 }).pipe(
                Layer.provide(Layer.mergeAll(Absolute.layer, Process.layer, shardingLayer(sharding), PythonRandomLayer))
              )
            )
          )
        )
      )
    console.log(`\nresolution ${resolution}:`)
    console.log("  sharding     env steps/s        rollout steps/s     eval episodes/s")
    const local = await measure("local")
    const row = (name: string, r: typeof local) =>
      console.log(
        `  ${name.padEnd(11)} ${r.envRate.toFixed(0).padStart(6)} (${(r.envRate / local.envRate).toFixed(2)}×)    ${r.rolloutRate.toFixed(0).padStart(6)} (${
          (r.rolloutRate / local.rolloutRate).toFixed(2)
        }×)    ${r.evalRate.toFixed(1).padStart(6)} (${(r.evalRate / local.evalRate).toFixed(2)}×)`
      )
    row("local", local)
    for (const n of WORKERS) row(`workers:${n}`, await measure(`workers:${n}`))
  }
  fs.rmSync(scratch, { recursive: true, force: true })
}

main().catch((e) => {
  console.error(e)
  process.exitCode = 1
})
