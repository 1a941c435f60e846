import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { isCheckpoint, loadCheckpoint, saveCheckpoint, type Checkpoint } from "../core/checkpoint.ts"
import { Environment } from "../core/environment.ts"
import { PolicyError, type PolicyService } from "../core/policy.ts"
import { ppoUpdate } from "../core/ppo.ts"
import type { Reward } from "../core/reward.ts"
import { RolloutCollector } from "../core/rollout.ts"
import { collectDemonstrations, sftTrain } from "../core/sft.ts"
import { writeFileAtomic } from "../core/files.ts"
import type { Layer } from "effect"
import { readRoutes, ROUTES_FILE } from "../plugins/dataset/virl-routes.ts"
import { oracle } from "../plugins/policy/oracle.ts"
import { appendRecord } from "../plugins/tracker/jsonl.ts"
import * as Backend from "../plugins/policy/tfjs/backend.ts"
import * as TfPolicy from "../plugins/policy/tfjs/layer.ts"
import { PythonRandom } from "../plugins/random/python-random.ts"
import type { RunConfig } from "./config.ts"
import { environmentLayer, policyConfig, ppoOptimizer, sftOptimizer } from "./layers.ts"

export interface Progress {
  readonly bar: (label: string) => (done: number, total: number) => void
  readonly log: (line: string) => void
}

export const silent: Progress = { bar: () => () => {}, log: () => {} }

/** Called after each SFT epoch / PPO update with the live policy (e.g. to evaluate it). */
export type AfterStep = (done: number, policy: PolicyService, info: { readonly samples: number }) => Effect.Effect<void, unknown>

/** One JSON object per line, appended as training goes. */
export const metricsLog = (file: string) => {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  return (record: Record<string, unknown>) => appendRecord(file, record)
}

export const CHECKPOINT_DIR = "checkpoint"

/** A small tfjs policy with a run's settings: fresh from `seed`, or with a checkpoint's weights. */
export const buildPolicy = (config: RunConfig, rng: PythonRandom, parameters?: Map<string, Float32Array>) =>
  Effect.gen(function* () {
    const backend = yield* Backend.make(config.backend)
    const policy = yield* Effect.try({
      try: () => TfPolicy.make(backend.tf, policyConfig(config), rng, parameters),
      catch: (e) => (e instanceof PolicyError ? e : new PolicyError({ message: String(e) }))
    })
    return { policy, backend: backend.name }
  })

const checkpointOf = (policy: PolicyService, rng: PythonRandom, phase: "sft" | "ppo", done: number, meta: Record<string, unknown>, optimizer?: Checkpoint["optimizer"]): Checkpoint => ({
  policy: { name: policy.name, config: policy.config },
  parameters: policy.learner!.parameters(),
  ...(optimizer === undefined ? {} : { optimizer }),
  rng: rng.snapshot(),
  progress: { phase, done },
  meta
})

/**
 * SFT: expert (oracle) trajectories on the training routes, cross-entropy on the expert output,
 * a checkpoint after every epoch. Re-run with the same out folder, it resumes after the last
 * finished epoch (demonstrations are re-collected; they are deterministic).
 */
export const trainSft = (
  config: RunConfig,
  dataDir: string,
  out: string,
  progress: Progress = silent,
  options: { readonly init?: string; readonly afterEpoch?: AfterStep } = {}
) =>
  Effect.gen(function* () {
    const ckptDir = path.join(out, CHECKPOINT_DIR)
    const log = metricsLog(path.join(out, "metrics.jsonl"))
    writeFileAtomic(path.join(out, "config.json"), JSON.stringify({ phase: "sft", data: dataDir, config }, null, 2))
    const rng = new PythonRandom(config.seed)
    const resumed = isCheckpoint(ckptDir) ? yield* loadCheckpoint(ckptDir) : undefined
    if (resumed !== undefined && resumed.progress.phase !== "sft") {
      return yield* new PolicyError({ message: `${ckptDir} holds a ${resumed.progress.phase} checkpoint; use another --out for SFT` })
    }
    if (resumed !== undefined && resumed.progress.done >= config.sft_config.epochs) {
      progress.log(`SFT already finished in ${ckptDir} (${resumed.progress.done} epochs)`)
      return ckptDir
    }
    if (resumed !== undefined) rng.restore(resumed.rng)
    const start = resumed?.progress.done ?? 0
    const initial = resumed?.parameters ?? (options.init === undefined ? undefined : (yield* loadCheckpoint(options.init)).parameters)
    const { policy, backend } = yield* buildPolicy(config, rng, initial)
    const learner = policy.learner!
    const routes = (yield* readRoutes(path.join(dataDir, ROUTES_FILE))).length
    const use = config.sft_config.routes > 0 ? Math.min(config.sft_config.routes, routes) : routes
    progress.log(`SFT on ${use} routes of ${dataDir} (backend ${backend})`)
    const t0 = performance.now()
    const samples = yield* Effect.provide(
      Effect.flatMap(Environment, (env) =>
        collectDemonstrations(env, oracle, learner, { routes: use, passes: config.sft_config.passes, onEpisode: progress.bar("expert trajectories") })
      ),
      environmentLayer(config, dataDir, "absolute")
    )
    const batches = Math.ceil(samples.length / config.sft_config.batch_size)
    const optimizer = sftOptimizer(config, batches * config.sft_config.epochs)
    if (resumed?.optimizer !== undefined) optimizer.restore(resumed.optimizer)
    progress.log(`${samples.length} expert steps in ${((performance.now() - t0) / 1000).toFixed(1)} s; training epochs ${start + 1}..${config.sft_config.epochs}`)
    const t1 = performance.now()
    const bar = progress.bar("SFT")
    for (let epoch = start; epoch < config.sft_config.epochs; epoch++) {
      const e0 = performance.now()
      const [stats] = yield* sftTrain(learner, optimizer, samples, { ...config.sft_config, epochs: 1 }, rng, {
        temperature: config.sft_config.temperature,
        onBatch: (done) => bar(epoch * batches + done, config.sft_config.epochs * batches)
      })
      const seconds = (performance.now() - e0) / 1000
      log({ phase: "sft", epoch: epoch + 1, samples: samples.length, loss: stats.loss, learning_rate: stats.learningRate, samples_per_second: samples.length / seconds })
      yield* saveCheckpoint(ckptDir, checkpointOf(policy, rng, "sft", epoch + 1, { config, data: dataDir, ...(options.init === undefined ? {} : { init: options.init }) }, optimizer.state()))
      if (options.afterEpoch !== undefined) yield* options.afterEpoch(epoch + 1, policy, { samples: samples.length * (epoch + 1) })
    }
    progress.log(`SFT done in ${((performance.now() - t1) / 1000).toFixed(1)} s -> ${ckptDir}`)
    return ckptDir
  })

/**
 * PPO from a checkpoint (spec §10): `num_updates` rounds of a `num_steps` rollout from
 * `num_processes` environments and a PPO update; a checkpoint every `save_every` updates and at
 * the end. Re-run with the same out folder, it resumes after the last saved update.
 */
export const trainPpo = (
  config: RunConfig,
  init: string,
  dataDir: string,
  out: string,
  progress: Progress = silent,
  reward?: Layer.Layer<Reward>,
  options: { readonly afterUpdate?: AfterStep; readonly beforeStart?: AfterStep } = {}
) =>
  Effect.gen(function* () {
    const ckptDir = path.join(out, CHECKPOINT_DIR)
    const log = metricsLog(path.join(out, "metrics.jsonl"))
    writeFileAtomic(path.join(out, "config.json"), JSON.stringify({ phase: "ppo", init, data: dataDir, config }, null, 2))
    const resumed = isCheckpoint(ckptDir) ? yield* loadCheckpoint(ckptDir) : undefined
    if (resumed !== undefined && resumed.progress.phase !== "ppo") {
      return yield* new PolicyError({ message: `${ckptDir} holds a ${resumed.progress.phase} checkpoint; use another --out for PPO` })
    }
    const start = resumed?.progress.done ?? 0
    if (start >= config.num_updates) {
      progress.log(`PPO already finished in ${ckptDir} (${start} updates)`)
      return ckptDir
    }
    const source = resumed ?? (yield* loadCheckpoint(init))
    const rng = new PythonRandom(config.seed)
    if (resumed !== undefined) rng.restore(resumed.rng)
    const { policy, backend } = yield* buildPolicy(config, rng, source.parameters)
    const optimizer = ppoOptimizer(config)
    if (resumed?.optimizer !== undefined) optimizer.restore(resumed.optimizer)
    progress.log(`PPO from ${resumed !== undefined ? `${ckptDir} (update ${start})` : init} on ${dataDir} (backend ${backend})`)
    const ppo = { ...config.ppo_config, ...config.compute_return_kwargs, ...config.generation_config, num_steps: config.num_steps, num_updates: config.num_updates, save_every: config.save_every }
    const t0 = performance.now()
    yield* Effect.provide(
      Effect.gen(function* () {
        const env = yield* Environment
        const collector = new RolloutCollector(env, policy, {
          properTimeLimits: config.compute_return_kwargs.use_proper_time_limits,
          act: { temperature: config.generation_config.temperature, greedy: false }
        })
        const bar = progress.bar("PPO updates")
        bar(start, config.num_updates)
        if (start === 0 && options.beforeStart !== undefined) yield* options.beforeStart(0, policy, { samples: 0 })
        for (let update = start; update < config.num_updates; update++) {
          const u0 = performance.now()
          const rollout = yield* collector.collect(config.num_steps)
          const r1 = performance.now()
          const stats = yield* ppoUpdate(ppo, rollout, policy.learner!, optimizer, rng)
          const r2 = performance.now()
          const episodes = rollout.episodes
          const mean = (xs: number[]) => (xs.length === 0 ? null : xs.reduce((s, x) => s + x, 0) / xs.length)
          log({
            phase: "ppo",
            update: update + 1,
            samples: rollout.samples.length,
            mean_step_reward: mean([...rollout.rewards]),
            correct_step_rate: rollout.correctSteps,
            episodes: episodes.length,
            episode_reward: mean(episodes.map((e) => e.reward)),
            success_rate: mean(episodes.map((e) => (e.success ? 1 : 0))),
            action_loss: stats.actionLoss,
            value_loss: stats.valueLoss,
            entropy: stats.entropy,
            clip_fraction: stats.clipFraction,
            approx_kl: stats.approxKl,
            learning_rate: stats.optimizerSteps.at(-1)?.learningRate ?? null,
            grad_norm: stats.optimizerSteps.at(-1)?.gradNorm ?? null,
            rollout_seconds: (r1 - u0) / 1000,
            update_seconds: (r2 - r1) / 1000,
            samples_per_second: (rollout.samples.length * config.ppo_config.ppo_epoch) / ((r2 - r1) / 1000)
          })
          bar(update + 1, config.num_updates)
          const done = update + 1
          if (done % Math.max(1, config.save_every) === 0 || done === config.num_updates) {
            yield* saveCheckpoint(ckptDir, checkpointOf(policy, rng, "ppo", done, { config, data: dataDir, init }, optimizer.state()))
            progress.log(`saved checkpoint at update ${done}`)
          }
          if (options.afterUpdate !== undefined) yield* options.afterUpdate(done, policy, { samples: done * rollout.samples.length })
        }
      }),
      environmentLayer(config, dataDir, "absolute", { seed: config.seed + start, ...(reward === undefined ? {} : { reward }) })
    )
    progress.log(`PPO done in ${((performance.now() - t0) / 1000).toFixed(1)} s -> ${ckptDir}`)
    return ckptDir
  })
