import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { type Checkpoint, CheckpointError, isCheckpoint, loadCheckpoint, type Phase, saveCheckpoint } from "../core/checkpoint.ts"
import type { DatasetError } from "../core/dataset.ts"
import { Environment } from "../core/environment.ts"
import { keepRecords, StorageError, writeFileAtomic } from "../core/files.ts"
import type { OptimizerService } from "../core/optimizer.ts"
import { type Learner, Policy, PolicyError, type PolicyService, type Sample } from "../core/policy.ts"
import type { ActionSpace } from "../core/action-space.ts"
import { ppoUpdate } from "../core/ppo.ts"
import { rftUpdate } from "../core/rft.ts"
import { Random, type Rng, type RngSnapshot } from "../core/random.ts"
import { type CollectorState, type Rollout, RolloutCollector } from "../core/rollout.ts"
import { collectDemonstrations, sftTrain } from "../core/sft.ts"
import { readRoutes, ROUTES_FILE } from "../plugins/dataset/virl-routes.ts"
import { oracle } from "../plugins/policy/oracle.ts"
import { Optimizer } from "../core/optimizer.ts"
import { appendRecord } from "../plugins/tracker/jsonl.ts"
import { track } from "../core/tracker.ts"
import type { RunConfig } from "./config.ts"
import { environmentLayer, policySettings, ppoOptimizer, sftOptimizer } from "./services.ts"

export interface Progress {
  readonly bar: (label: string) => (done: number, total: number) => void
  readonly log: (line: string) => void
}

export const silent: Progress = { bar: () => () => {}, log: () => {} }

/** The checkpoint in `ckptDir` to resume from (none: undefined); one of another phase is an error that names it. */
const resumable = (ckptDir: string, phase: Phase) =>
  Effect.gen(function*() {
    const resumed = isCheckpoint(ckptDir) ? yield* loadCheckpoint(ckptDir) : undefined
    if (resumed !== undefined && resumed.progress.phase !== phase) {
      return yield* new CheckpointError({ path: ckptDir, message: `holds a ${resumed.progress.phase} checkpoint; use another --out for ${phase}` })
    }
    return resumed
  })

/** Called after each SFT epoch / PPO update with the live policy (e.g. to evaluate it). */
export type AfterStep<E = never> = (done: number, policy: PolicyService, info: { readonly samples: number }) => Effect.Effect<void, E, Random>

/**
 * Runs a hook (an evaluation along training) with the training generator put back afterwards, so
 * training draws the same numbers whether or not the hook ran or sampled — a resumed run skips
 * evaluations it already has.
 */
const isolated = <E, R>(rng: Rng, hook: Effect.Effect<void, E, R>) =>
  Effect.suspend(() => {
    const before = rng.snapshot()
    return Effect.ensuring(hook, Effect.sync(() => rng.restore(before)))
  })

/** One JSON object per line, appended as training goes, and the same record to the run's Tracker (live views). */
export const metricsLog = (file: string) => {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  return (record: Record<string, unknown>) => Effect.zipRight(Effect.sync(() => appendRecord(file, record)), track({ kind: "train", ...record }))
}

export const CHECKPOINT_DIR = "checkpoint"

/** On resume: the metrics logged after the checkpoint (`key` ≤ `done` kept) go, to be logged again. */
const keepRecordsUpTo = (file: string, key: "epoch" | "update", done: number) =>
  Effect.try({
    try: () => keepRecords<Record<string, unknown>>(file, (r) => !(Number(r[key]) > done)),
    catch: (e) => new StorageError({ path: file, message: `cannot resume: ${(e as Error).message}` })
  })

/**
 * The run's policy (its Policy layer): fresh from the run's settings and `rng`, or a checkpoint's —
 * built with the architecture the checkpoint stores, whatever this run's `policy_config` says.
 */
export const buildPolicy = (config: RunConfig, rng: Rng, from?: { readonly checkpoint: Checkpoint; readonly path: string }) =>
  Effect.gen(function*() {
    const factory = yield* Policy
    const policy = yield* factory.make(
      policySettings(config),
      rng,
      from === undefined ? undefined : { ...from.checkpoint.policy, parameters: from.checkpoint.parameters, path: from.path }
    )
    return { policy, backend: policy.device ?? policy.name }
  })

/** A scope's finalizer for a policy built in it: gives back its tensors and GPU buffers. */
export const releasePolicy = (policy: PolicyService) => Effect.sync(() => policy.release?.())

/** `buildPolicy`, released when the scope closes. */
export const scopedPolicy = (config: RunConfig, rng: Rng, from?: { readonly checkpoint: Checkpoint; readonly path: string }) =>
  Effect.acquireRelease(buildPolicy(config, rng, from), ({ policy }) => releasePolicy(policy))

/** Training needs a learner; a policy layer without one (oracle, random, an API model) says so. */
const trainable = (policy: PolicyService) =>
  policy.learner === undefined
    ? Effect.fail(
      new PolicyError({ message: `the policy layer "${policy.name}" cannot be trained (it has no learner); give the arm a trainable policy layer` })
    )
    : Effect.void

/** The phase's optimizer, run by the learner where its parameters live when it can (a GPU). */
const placeOptimizer = (learner: Learner, optimizer: OptimizerService) =>
  Effect.map(Optimizer, (factory) => learner.onDevice?.(factory.name, optimizer) ?? optimizer)

/** A checkpoint's optimizer state put back; one that does not fit the optimizer is the checkpoint's failure, named. */
const restoreOptimizer = (optimizer: OptimizerService, state: NonNullable<Checkpoint["optimizer"]>, dir: string) =>
  Effect.try({
    try: () => optimizer.restore(state),
    catch: (e) => new CheckpointError({ path: dir, message: `its optimizer state does not fit this optimizer: ${(e as Error).message}` })
  })

/** parameters() and the optimizer's state() brought up to date with the device, before they are read. */
const settle = (learner: Learner) => learner.settle?.() ?? Effect.void

const checkpointOf = (
  policy: PolicyService,
  rng: Rng,
  phase: Phase,
  done: number,
  meta: Record<string, unknown>,
  optimizer?: Checkpoint["optimizer"]
): Checkpoint => ({
  policy: { name: policy.name, config: policy.config },
  parameters: policy.learner!.parameters(),
  ...(optimizer === undefined ? {} : { optimizer }),
  rng: rng.snapshot(),
  progress: { phase, done },
  meta
})

/** Expert episodes on the first `routes` routes of a dataset, under one rule set. */
export interface DemonstrationSource {
  readonly dir: string
  /** The rules the expert answers in (default: the run's ActionSpace layer). */
  readonly actionSpace?: Layer.Layer<ActionSpace>
  readonly routes: number
  readonly passes: number
  readonly expert: PolicyService
  readonly instructionVariants: boolean
  /** The environment's generator seed (rails and wording). */
  readonly seed: number
  /** What the learner is taught to write for each expert answer (default: the answer). */
  readonly written?: (text: string) => string
}

const collectSources = (config: RunConfig, policy: PolicyService, sources: ReadonlyArray<DemonstrationSource>, progress: Progress) =>
  Effect.gen(function*() {
    const samples: Sample[] = []
    const bar = progress.bar("expert trajectories")
    const total = sources.reduce((s, src) => s + src.routes * src.passes, 0)
    let before = 0
    for (const src of sources) {
      const got = yield* Effect.provide(
        Effect.flatMap(Environment, (env) =>
          collectDemonstrations(env, src.expert, policy.learner!, {
            routes: src.routes,
            passes: src.passes,
            onEpisode: (done) => bar(before + done, total),
            ...(src.written === undefined ? {} : { written: src.written })
          })),
        environmentLayer(config, src.dir, { seed: src.seed, instructionVariants: src.instructionVariants }).pipe((l) =>
          src.actionSpace === undefined ? l : Layer.provide(l, src.actionSpace)
        )
      )
      before += src.routes * src.passes
      samples.push(...got)
    }
    return samples
  })

/** What behaviour cloning needs beyond the data: the loop's length, batch and learning rate. */
export interface FitSettings {
  readonly epochs: number
  readonly batch_size: number
  readonly init_lr: number
  readonly end_lr: number
  readonly max_grad_norm: number
  readonly temperature: number
}

/**
 * Behaviour cloning on expert trajectories with a checkpoint after every epoch: re-run with the
 * same `out`, it resumes after the last finished epoch (demonstrations are re-collected; they
 * are deterministic). Starts from `init`'s weights, or fresh from `seed`.
 */
export const behaviourCloning = <E = never>(
  config: RunConfig,
  phase: "sft" | "pretrain",
  settings: FitSettings,
  sources: (policy: PolicyService) => Effect.Effect<ReadonlyArray<DemonstrationSource>, DatasetError>,
  out: string,
  progress: Progress,
  options: { readonly init?: string; readonly seed: number; readonly meta: Record<string, unknown>; readonly afterEpoch?: AfterStep<E> }
) =>
  Effect.scoped(Effect.gen(function*() {
    const ckptDir = path.join(out, CHECKPOINT_DIR)
    const log = metricsLog(path.join(out, "metrics.jsonl"))
    // a folder of another phase is refused before anything of this run is written into it
    const resumed = yield* resumable(ckptDir, phase)
    writeFileAtomic(path.join(out, "config.json"), JSON.stringify({ phase, ...options.meta, config }, null, 2))
    const rng = (yield* Random).make(options.seed)
    if (resumed !== undefined && resumed.progress.done >= settings.epochs) {
      progress.log(`${phase} already finished in ${ckptDir} (${resumed.progress.done} epochs)`)
      return ckptDir
    }
    if (resumed !== undefined) rng.restore(resumed.rng)
    const start = resumed?.progress.done ?? 0
    yield* keepRecordsUpTo(path.join(out, "metrics.jsonl"), "epoch", start)
    const initial = resumed !== undefined
      ? { checkpoint: resumed, path: ckptDir }
      : options.init === undefined
      ? undefined
      : { checkpoint: yield* loadCheckpoint(options.init), path: options.init }
    const { policy, backend } = yield* scopedPolicy(config, rng, initial)
    yield* trainable(policy)
    const makers = yield* currentMakers
    const learner = policy.learner!
    const t0 = performance.now()
    const src = yield* sources(policy)
    const samples = yield* collectSources(config, policy, src, progress)
    const batches = Math.ceil(samples.length / settings.batch_size)
    const optimizer = yield* placeOptimizer(learner, yield* sftOptimizer(config, settings, batches * settings.epochs))
    if (resumed?.optimizer !== undefined) yield* restoreOptimizer(optimizer, resumed.optimizer, ckptDir)
    progress.log(
      `${phase}: ${samples.length} expert steps from ${src.length} source(s) in ${((performance.now() - t0) / 1000).toFixed(1)} s (backend ${backend}); ` +
        `epochs ${start + 1}..${settings.epochs}`
    )
    const t1 = performance.now()
    const bar = progress.bar(phase === "pretrain" ? "pretraining" : "SFT")
    for (let epoch = start; epoch < settings.epochs; epoch++) {
      const e0 = performance.now()
      const [stats] = yield* sftTrain(learner, optimizer, samples, { epochs: 1, batch_size: settings.batch_size, passes: 1 }, rng, {
        temperature: settings.temperature,
        onBatch: (done) => bar(epoch * batches + done, settings.epochs * batches)
      })
      const seconds = (performance.now() - e0) / 1000
      yield* log({
        phase,
        epoch: epoch + 1,
        samples: samples.length,
        loss: stats.loss,
        learning_rate: stats.learningRate,
        samples_per_second: samples.length / seconds
      })
      progress.log(
        `${phase} epoch ${epoch + 1}/${settings.epochs}: loss ${stats.loss.toFixed(4)}, lr ${stats.learningRate.toExponential(2)}, ${
          (samples.length / seconds).toFixed(0)
        } samples/s`
      )
      // the hook (evaluations) before the checkpoint: a run killed during it redoes the epoch and the hook
      if (options.afterEpoch !== undefined) yield* isolated(rng, options.afterEpoch(epoch + 1, policy, { samples: samples.length * (epoch + 1) }))
      yield* settle(learner)
      yield* saveCheckpoint(ckptDir, checkpointOf(policy, rng, phase, epoch + 1, { config, ...options.meta, layers: makers }, optimizer.state()))
    }
    progress.log(`${phase} done in ${((performance.now() - t1) / 1000).toFixed(1)} s -> ${ckptDir}`)
    return ckptDir
  }))

const sftSettings = (config: RunConfig): FitSettings => ({ ...config.sft_config })

/**
 * SFT: expert (oracle) trajectories on the training routes, cross-entropy on the expert output,
 * a checkpoint after every epoch; resumable.
 */
export const trainSft = <E = never>(
  config: RunConfig,
  dataDir: string,
  out: string,
  progress: Progress = silent,
  options: { readonly init?: string; readonly afterEpoch?: AfterStep<E> } = {}
) =>
  behaviourCloning(
    config,
    "sft",
    sftSettings(config),
    () =>
      Effect.gen(function*() {
        const routes = (yield* readRoutes(path.join(dataDir, ROUTES_FILE))).length
        const use = config.sft_config.routes > 0 ? Math.min(config.sft_config.routes, routes) : routes
        progress.log(`SFT on ${use} routes of ${dataDir}`)
        return [{ dir: dataDir, routes: use, passes: config.sft_config.passes, expert: oracle, instructionVariants: false, seed: config.seed }] as const
      }),
    out,
    progress,
    {
      seed: config.seed,
      meta: { data: dataDir, ...(options.init === undefined ? {} : { init: options.init }) },
      ...(options.init === undefined ? {} : { init: options.init }),
      ...(options.afterEpoch === undefined ? {} : { afterEpoch: options.afterEpoch })
    }
  )

/** Which Policy and Optimizer layers trained a checkpoint (and built a base: the defaults leave its cache key as it was). */
export interface BaseMakers {
  readonly policy: string
  readonly policyKey?: string
  readonly optimizer: string
}

/** The makers of the context's Policy and Optimizer layers. */
export const currentMakers = Effect.gen(function*() {
  const policy = yield* Policy
  const optimizer = yield* Optimizer
  return { policy: policy.name, ...(policy.key === undefined ? {} : { policyKey: policy.key }), optimizer: optimizer.name } satisfies BaseMakers
})

/** RFT's sampler when the policy being trained writes its own samples. */
export const SELF = "self"

/** One round of on-policy training: a rollout and an update of the policy from it. */
type Round = (rollout: Rollout, policy: PolicyService, optimizer: OptimizerService, rng: Rng) => Effect.Effect<Record<string, unknown>, PolicyError>

/**
 * On-policy training from a checkpoint: `num_updates` rounds of a `num_steps` rollout from
 * `num_processes` environments and an update; a checkpoint every `save_every` rounds and at
 * the end. Re-run with the same out folder, it resumes after the last saved round.
 */
const onPolicy = <E = never>(
  config: RunConfig,
  phase: "ppo" | "rft",
  round: Round,
  init: string,
  dataDir: string,
  out: string,
  progress: Progress,
  options: { readonly afterUpdate?: AfterStep<E>; readonly actor?: string }
) =>
  Effect.scoped(Effect.gen(function*() {
    const ckptDir = path.join(out, CHECKPOINT_DIR)
    const log = metricsLog(path.join(out, "metrics.jsonl"))
    // a folder of another phase is refused before anything of this run is written into it
    const resumed = yield* resumable(ckptDir, phase)
    writeFileAtomic(path.join(out, "config.json"), JSON.stringify({ phase, init, data: dataDir, config }, null, 2))
    const start = resumed?.progress.done ?? 0
    yield* keepRecordsUpTo(path.join(out, "metrics.jsonl"), "update", start)
    if (start >= config.num_updates) {
      progress.log(`${phase} already finished in ${ckptDir} (${start} updates)`)
      return ckptDir
    }
    const source = resumed ?? (yield* loadCheckpoint(init))
    const random = yield* Random
    const rng = random.make(config.seed)
    if (resumed !== undefined) rng.restore(resumed.rng)
    const { policy, backend } = yield* scopedPolicy(config, rng, { checkpoint: source, path: resumed === undefined ? init : ckptDir })
    yield* trainable(policy)
    // the policy that writes the rollouts: the one being trained, or another fixed one
    // a fixed sampler draws from a generator of its own, saved with the checkpoint
    const actorRng = random.make(config.seed + 7919)
    const saved = resumed?.resume as { readonly collector?: CollectorState; readonly actor_rng?: RngSnapshot } | undefined
    if (saved?.actor_rng !== undefined) actorRng.restore(saved.actor_rng)
    const actor = options.actor === undefined
      ? policy
      : (yield* scopedPolicy(config, actorRng, { checkpoint: yield* loadCheckpoint(options.actor), path: options.actor })).policy
    const optimizer = yield* placeOptimizer(policy.learner!, yield* ppoOptimizer(config))
    const makers = yield* currentMakers
    if (resumed?.optimizer !== undefined) yield* restoreOptimizer(optimizer, resumed.optimizer, ckptDir)
    progress.log(
      `${phase} from ${resumed !== undefined ? `${ckptDir} (update ${start})` : init} on ${dataDir} (backend ${backend})` +
        (options.actor === undefined ? "" : `, rollouts by ${options.actor}`)
    )
    const t0 = performance.now()
    yield* Effect.provide(
      Effect.gen(function*() {
        const env = yield* Environment
        const collector = new RolloutCollector(env, actor, {
          properTimeLimits: config.compute_return_kwargs.use_proper_time_limits,
          act: { temperature: config.generation_config.temperature, greedy: false }
        })
        if (saved?.collector !== undefined) yield* collector.restore(saved.collector)
        const bar = progress.bar(`${phase.toUpperCase()} updates`)
        bar(start, config.num_updates)
        for (let update = start; update < config.num_updates; update++) {
          const u0 = performance.now()
          const rollout = yield* collector.collect(config.num_steps)
          const r1 = performance.now()
          const stats = yield* round(rollout, policy, optimizer, rng)
          const r2 = performance.now()
          const episodes = rollout.episodes
          const mean = (xs: number[]) => (xs.length === 0 ? null : xs.reduce((s, x) => s + x, 0) / xs.length)
          const record = {
            phase,
            update: update + 1,
            samples: rollout.samples.length,
            mean_step_reward: mean([...rollout.rewards]),
            correct_step_rate: rollout.correctSteps,
            episodes: episodes.length,
            episode_reward: mean(episodes.map((e) => e.reward)),
            success_rate: mean(episodes.map((e) => (e.success ? 1 : 0))),
            ...stats,
            rollout_seconds: (r1 - u0) / 1000,
            update_seconds: (r2 - r1) / 1000
          }
          yield* log(record)
          progress.log(updateSummary(record, config.num_updates))
          bar(update + 1, config.num_updates)
          const done = update + 1
          // the hook (evaluations) before the checkpoint: a run killed during it redoes the update and the hook
          if (options.afterUpdate !== undefined) yield* isolated(rng, options.afterUpdate(done, policy, { samples: done * rollout.samples.length }))
          if (done % Math.max(1, config.save_every) === 0 || done === config.num_updates) {
            const resume = { collector: collector.state(), ...(options.actor === undefined ? {} : { actor_rng: actorRng.snapshot() }) }
            yield* settle(policy.learner!)
            yield* saveCheckpoint(ckptDir, {
              ...checkpointOf(policy, rng, phase, done, { config, data: dataDir, init, layers: makers }, optimizer.state()),
              resume
            })
            progress.log(`saved checkpoint at update ${done}`)
          }
        }
      }),
      environmentLayer(config, dataDir, { seed: config.seed })
    )
    progress.log(`${phase} done in ${((performance.now() - t0) / 1000).toFixed(1)} s -> ${ckptDir}`)
    return ckptDir
  }))

/** One line per on-policy update: its rewards, rollouts' success and what the optimizer saw. */
const updateSummary = (r: Readonly<Record<string, unknown>>, updates: number): string => {
  const num = (key: string, digits: number, scale = 1) => (typeof r[key] === "number" ? ((r[key] as number) * scale).toFixed(digits) : "—")
  const extra = ["approx_kl", "clip_fraction", "entropy", "loss"].filter((k) => typeof r[k] === "number").map((k) => `${k.replace("_", " ")} ${num(k, 4)}`)
  return `${String(r["phase"])} update ${String(r["update"])}/${updates}: reward ${num("mean_step_reward", 3)}/step, correct ${
    num("correct_step_rate", 1, 100)
  } %, ` +
    `rollout success ${num("success_rate", 1, 100)} % of ${String(r["episodes"])} episodes${extra.length === 0 ? "" : `, ${extra.join(", ")}`} ` +
    `(rollout ${num("rollout_seconds", 1)} s, update ${num("update_seconds", 1)} s)`
}

/** PPO from a checkpoint (spec §10), resumable; see `onPolicy`. */
export const trainPpo = <E = never>(
  config: RunConfig,
  init: string,
  dataDir: string,
  out: string,
  progress: Progress = silent,
  options: { readonly afterUpdate?: AfterStep<E> } = {}
) => {
  const ppo = {
    ...config.ppo_config,
    ...config.compute_return_kwargs,
    ...config.generation_config,
    num_steps: config.num_steps,
    num_updates: config.num_updates,
    save_every: config.save_every
  }
  const round: Round = (rollout, policy, optimizer, rng) =>
    Effect.gen(function*() {
      const t = performance.now()
      const stats = yield* ppoUpdate(ppo, rollout, policy.learner!, optimizer, rng)
      return {
        action_loss: stats.actionLoss,
        value_loss: stats.valueLoss,
        entropy: stats.entropy,
        clip_fraction: stats.clipFraction,
        approx_kl: stats.approxKl,
        learning_rate: stats.optimizerSteps.at(-1)?.learningRate ?? null,
        grad_norm: stats.optimizerSteps.at(-1)?.gradNorm ?? null,
        samples_per_second: (rollout.samples.length * config.ppo_config.ppo_epoch) / ((performance.now() - t) / 1000)
      }
    })
  return onPolicy(config, "ppo", round, init, dataDir, out, progress, options)
}

/**
 * Rejection-sampling fine-tuning from a checkpoint (core/rft.ts's update, `ppo_epoch` passes in
 * mini-batches of `mini_batch_size`), resumable; rollouts as PPO collects them, written by
 * `sampler` (a fixed policy's checkpoint, e.g. the base model) or by the policy being trained
 * (`"self"`); see `onPolicy`.
 */
export const trainRft = <E = never>(
  config: RunConfig,
  init: string,
  sampler: string,
  dataDir: string,
  out: string,
  progress: Progress = silent,
  options: { readonly afterUpdate?: AfterStep<E> } = {}
) => {
  const round: Round = (rollout, policy, optimizer, rng) =>
    Effect.gen(function*() {
      const t = performance.now()
      const settings = { epochs: config.ppo_config.ppo_epoch, batchSize: config.ppo_config.mini_batch_size, temperature: config.generation_config.temperature }
      const stats = yield* rftUpdate(settings, rollout, policy.learner!, optimizer, rng)
      if (stats.kept === 0) return { kept: 0 }
      return {
        kept: stats.kept,
        loss: stats.loss,
        learning_rate: stats.learningRate,
        samples_per_second: (stats.kept * config.ppo_config.ppo_epoch) / ((performance.now() - t) / 1000)
      }
    })
  return onPolicy(config, "rft", round, init, dataDir, out, progress, { ...options, ...(sampler === SELF ? {} : { actor: sampler }) })
}
