import { Data, Effect, Either, Fiber, Schedule } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { type Arm, baseOf, type Experiment, mergeComponents, type SuiteSpec } from "../core/experiment.ts"
import { readRecords, writeFileAtomic } from "../core/files.ts"
import type { OutputDistribution, PolicyInput, PolicyService } from "../core/policy.ts"
import { tagged, Tracker, type TrackerService } from "../core/tracker.ts"
import type { DefaultDatasets } from "../plugins/dataset/synth/default.ts"
import * as Jsonl from "../plugins/tracker/jsonl.ts"
import { PRESETS, resolveConfig, type RunConfig } from "./config.ts"
import { armComponents, datasetDir, DEFAULT_COMPONENTS, ensureDataset, trainingLayer } from "./components.ts"
import { evaluateSuite, scopedPolicyFromCheckpoint, suiteEpisodes } from "./evaluate.ts"
import { suiteSpecs } from "./suites.ts"
import { frontierProblem, type SuiteRoutes, validationLeak } from "./frontier-checks.ts"
import { provenance } from "./provenance.ts"
import { klInputs, measureKl, outputDistributions } from "./kl.ts"
import { appendLine, appendRecord, type EvalRecord, EVALS_FILE, KL_FILE, type KlRecord, PHASES_FILE, readEvals, readKl, SEED_LOG } from "./run-folder.ts"
import { trainPretrain } from "./base-model.ts"
import { CHECKPOINT_DIR, type Progress, SELF, silent, trainPpo, trainRft, trainSft } from "./train.ts"

export interface RunOptions {
  readonly out: string
  readonly seeds?: ReadonlyArray<number>
  readonly quick?: boolean
  /** Dotted overrides from the command line, applied last. */
  readonly overrides?: Readonly<Record<string, unknown>>
  /** The config experiments start from (default: the `small` preset; `--preset` / `--config FILE`). */
  readonly base?: RunConfig
  readonly datasets: DefaultDatasets
  readonly progress?: Progress
  /** Where run-level metrics go (default: JSONL in the run folder). */
  readonly tracker?: TrackerService
  /**
   * Seeds run at once (default 1: one after another). With more, the shared base (pretrain arms)
   * is built first, then the seeds' other arms run side by side — on a machine with a GPU and
   * many cores, environments, evaluations and updates of several seeds overlap. Results are the
   * same; evals.jsonl and kl.jsonl get their lines in the order they finish.
   */
  readonly parallelSeeds?: number
  /**
   * Runs one seed's arms (the base already built) in a process of its own: the CLI starts
   * `virl run FILE --only-seed S`. Given, seeds run side by side (parallelSeeds > 1) in such
   * processes, each with its own JavaScript thread, instead of as fibers of this one.
   */
  readonly seedProcess?: (seed: number) => Effect.Effect<void, ExperimentError>
  /** This process runs some of a parent run's seeds (`--only-seed`): config.json is the parent's to write. */
  readonly part?: boolean
}

/** An experiment that cannot run as declared, or a run folder that cannot be read; says which. */
export class ExperimentError extends Data.TaggedError("ExperimentError")<{ readonly message: string }> {
  override toString(): string {
    return this.message
  }
}

export const armOrder = (arms: ReadonlyArray<Arm>): Arm[] => {
  const byName = new Map(arms.map((a) => [a.name, a]))
  const ordered: Arm[] = []
  const visit = (arm: Arm, trail: string[]) => {
    if (ordered.includes(arm)) return
    if (trail.includes(arm.name)) throw new Error(`arms ${[...trail, arm.name].join(" -> ")} form a cycle`)
    const needs = [arm.recipe.from, arm.recipe.kind === "rft" && arm.recipe.samples !== SELF ? arm.recipe.samples : undefined]
    for (const from of needs) {
      if (from === undefined) continue
      const parent = byName.get(from)
      if (parent === undefined) throw new Error(`arm ${arm.name} starts from unknown arm ${JSON.stringify(from)}; arms: ${[...byName.keys()].join(", ")}`)
      visit(parent, [...trail, arm.name])
    }
    ordered.push(arm)
  }
  for (const arm of arms) visit(arm, [])
  return ordered
}

/** The arms an arm descends from, nearest first. */
export const lineage = (arms: ReadonlyArray<Arm>, arm: Arm): string[] => {
  const out: string[] = []
  let from = arm.recipe.from
  while (from !== undefined && !out.includes(from)) {
    out.push(from)
    from = arms.find((a) => a.name === from)?.recipe.from
  }
  return out
}

/**
 * An arm's configuration, later sources winning: the `small` preset (or `base`: the command
 * line's --preset or --config FILE), the experiment's `config`,
 * the arm's `config`, the sweep value's (in a sweep trial), the experiment's `quick` values and
 * the arm's (with --quick), the command line's dotted flags; then the seed (and, where the
 * experiment declares bases, the pretraining seed of the seed's base).
 */
export const armConfig = (experiment: Experiment, arm: Arm, options: Pick<RunOptions, "quick" | "overrides" | "base">, seed: number) =>
  resolveConfig(options.base ?? PRESETS.small, [
    { source: `${experiment.name} config`, values: experiment.config ?? {} },
    { source: `arm ${arm.name}`, values: arm.config ?? {} },
    ...(arm.sweep === undefined ? [] : [{ source: `sweep value of arm ${arm.name}`, values: arm.sweep.config }]),
    ...(options.quick === true ? [{ source: `${experiment.name} quick`, values: experiment.quick ?? {} }] : []),
    ...(options.quick === true && arm.quick !== undefined ? [{ source: `arm ${arm.name} quick`, values: arm.quick }] : []),
    { source: "command line", values: options.overrides ?? {} },
    { source: "seed", values: withBase(experiment, seed) }
  ])

const withBase = (experiment: Experiment, seed: number): Record<string, unknown> => {
  const base = baseOf(experiment, seed)
  return base === undefined ? { seed } : { seed, "pretrain_config.seed": base }
}

/** The config a suite evaluates an arm under: the arm's, with the suite's own values over it. */
export const suiteConfig = (config: RunConfig, suite: SuiteSpec) =>
  suite.config === undefined
    ? Effect.succeed(config)
    : Either.match(resolveConfig(config, [{ source: `suite ${suite.name}`, values: suite.config }]), { onLeft: Effect.fail, onRight: Effect.succeed })

/** How many epochs or updates an arm's recipe runs. */
export const recipeLength = (arm: Arm, config: RunConfig): number => {
  switch (arm.recipe.kind) {
    case "pretrain":
      return config.pretrain_config.epochs
    case "sft":
      return config.sft_config.epochs
    default:
      return config.num_updates
  }
}

const points = (
  total: number,
  count: number
): number[] => [...new Set(Array.from({ length: count }, (_, k) => Math.max(1, Math.round(((k + 1) * total) / count))))]

const attempt = <A>(f: () => A) => Effect.try({ try: f, catch: (e) => new ExperimentError({ message: e instanceof Error ? e.message : String(e) }) })

/**
 * Runs every arm of an experiment for every seed, in dependency order, into `out`:
 * out/seed-S/ARM/{checkpoint, metrics.jsonl, config.json, eval-logs/} and the run's evals.jsonl
 * and kl.jsonl. Arms and evaluation points already done are skipped, so the same command
 * resumes an interrupted run. A `pretrain` arm is the same cached base for every seed: it is
 * evaluated once and its records are shared by the seeds.
 */
export const runExperiment = (experiment: Experiment, options: RunOptions) =>
  Effect.gen(function*() {
    const progress = options.progress ?? silent
    const seeds = options.seeds ?? experiment.seeds
    const arms = yield* attempt(() => armOrder(experiment.arms))
    const suites = yield* attempt(() => suiteSpecs(experiment.suites))
    const frontier = frontierProblem(experiment, suites.map((s) => s.name))
    if (frontier !== undefined) return yield* new ExperimentError({ message: `${experiment.name}: ${frontier}` })
    if (experiment.klReference !== undefined && !arms.some((a) => a.name === experiment.klReference)) {
      return yield* new ExperimentError({
        message: `klReference ${JSON.stringify(experiment.klReference)} is not an arm; arms: ${arms.map((a) => a.name).join(", ")}`
      })
    }
    // a suite without an action space of its own asks in the experiment's rules
    const experimentRules = mergeComponents(DEFAULT_COMPONENTS, experiment.layers).actionSpace ?? DEFAULT_COMPONENTS.actionSpace
    const suiteWithRules = (suite: SuiteSpec): SuiteSpec => ({ ...suite, actionSpace: suite.actionSpace ?? experimentRules })
    fs.mkdirSync(options.out, { recursive: true })
    const evalsFile = path.join(options.out, EVALS_FILE)
    const klFile = path.join(options.out, KL_FILE)
    const tracker = options.tracker ?? Jsonl.make(options.out)
    // a part of a run shares these files with its sibling processes: a line being written by one is left alone
    const repair = options.part !== true
    const done = yield* attempt(() => readEvals(evalsFile, { repair }))
    const klDone = yield* attempt(() => readKl(klFile, { repair }))
    const count = experiment.evaluations ?? 3
    // config.json shows the last seed's settings
    const resolved: Record<string, RunConfig> = {}
    for (const arm of arms) {
      resolved[arm.name] = yield* Either.match(armConfig(experiment, arm, options, seeds[seeds.length - 1]), { onLeft: Effect.fail, onRight: Effect.succeed })
    }
    // the run's settings from its start (a live W&B run shows them); written again at its end
    if (options.part !== true) writeRunConfig(options.out, experiment, seeds, options.quick === true, resolved)
    // a suite's own config values checked now; suites on synthetic cities made now, once, before
    // seeds (perhaps in processes of their own) look for them
    const episodesOf = new Map<SuiteSpec, Set<number>>()
    for (const spec of suites) {
      const episodes = new Set<number>()
      for (const config of Object.values(resolved)) episodes.add(suiteEpisodes(spec, yield* suiteConfig(config, spec)))
      episodesOf.set(spec, episodes)
    }
    // the validation routes share none with a test suite's (choices made on them are not made on the test)
    const routesOf: SuiteRoutes[] = suites.map((spec) => ({ name: spec.name, dataset: spec.dataset, episodes: Math.max(...episodesOf.get(spec)!) }))
    const validation = routesOf.find((s) => s.name === experiment.frontier?.validation)
    const leak = validation === undefined ? undefined : validationLeak(validation, routesOf.filter((s) => s !== validation))
    if (leak !== undefined) return yield* new ExperimentError({ message: `${experiment.name}: ${leak}` })
    const c0 = performance.now()
    for (const spec of suites) {
      for (const n of episodesOf.get(spec)!) {
        yield* ensureDataset(spec.dataset, options.datasets, n, { onProgress: progress.bar(`rendering the city of suite ${spec.name}`), log: progress.log })
      }
    }
    const citySeconds = (performance.now() - c0) / 1000
    if (citySeconds >= 1) appendLine(path.join(options.out, PHASES_FILE), { phase: "cities", seconds: citySeconds })
    let probe: { inputs: PolicyInput[]; reference: Map<string, OutputDistribution[]> } | undefined
    // seeds running side by side build the KL probe and each reference's distributions once
    const probeLock = yield* Effect.makeSemaphore(1)
    // per seed: training samples at each arm's final point (a child's offset)
    const finals = new Map(seeds.map((seed) => [seed, new Map<string, number>()]))
    const runArm = (seed: number, arm: (typeof arms)[number]) =>
      Effect.gen(function*() {
        const finalSamples = finals.get(seed)!
        const base = baseOf(experiment, seed)
        const tagBase = base === undefined ? {} : { base }
        // where the arm's time goes: evaluation and the KL probe, the rest is training
        const t0 = performance.now()
        const spent = { evaluation: 0, kl: 0 }
        const timed = <A, E, R>(part: keyof typeof spent, work: Effect.Effect<A, E, R>) =>
          Effect.suspend(() => {
            const t = performance.now()
            return Effect.ensuring(work, Effect.sync(() => (spent[part] += (performance.now() - t) / 1000)))
          })
        const config = yield* Either.match(armConfig(experiment, arm, options, seed), { onLeft: Effect.fail, onRight: Effect.succeed })
        const components = armComponents(experiment, arm, config)
        const layer = trainingLayer(components)
        const dir = path.join(options.out, `seed-${seed}`, arm.name)
        const offset = arm.recipe.from === undefined ? 0 : (finalSamples.get(arm.recipe.from) ?? 0)
        const total = recipeLength(arm, config)
        const wanted = arm.recipe.kind === "pretrain" ? [total] : points(total, count)
        const reference = experiment.klReference
        const measuresKl = reference !== undefined && lineage(arms, arm).includes(reference)
        const record = (r: EvalRecord) =>
          Effect.gen(function*() {
            appendRecord(evalsFile, r)
            done.push(r)
            yield* tracker.log({
              kind: "eval",
              seed: r.seed,
              arm: r.arm,
              step: r.step,
              samples: r.samples,
              suite: r.suite,
              per_step_accuracy: r.metrics.per_step_accuracy,
              success_rate: r.metrics.success_rate,
              mean_reward: r.metrics.mean_reward
            })
          })
        const evaluate = (step: number, policy: PolicyService, samples: number) =>
          Effect.gen(function*() {
            for (const spec of suites) {
              const suite = spec.name
              if (done.some((r) => r.seed === seed && r.arm === arm.name && r.step === step && r.suite === suite)) continue
              // a base is evaluated once: its records serve every seed that trains from it
              const shared = arm.recipe.kind === "pretrain"
                ? done.find((r) => r.arm === arm.name && r.step === step && r.suite === suite && r.base === base)
                : undefined
              const metrics = shared?.metrics ??
                (yield* timed(
                  "evaluation",
                  evaluateSuite(yield* suiteConfig(config, spec), policy, suiteWithRules(spec), options.datasets, {
                    ...(experiment.evaluationLogs === "final" && step !== total
                      ? {}
                      : {
                        logFile: path.join(dir, "eval-logs", `${suite}-step${step}.jsonl`),
                        // frames only at an arm's final point: they are what a viewer compares, and they keep a run's size small
                        traces: { file: path.join(dir, "eval-logs", `${suite}-step${step}.episodes.jsonl`), runDir: options.out, frames: step === total }
                      }),
                    onEpisode: progress.bar(`seed ${seed} ${arm.name} step ${step}/${total}: eval ${suite}`)
                  })
                ))
              yield* record({ seed, ...tagBase, arm: arm.name, step, total, samples: offset + samples, suite, metrics })
            }
            if (measuresKl && !klDone.some((r) => r.seed === seed && r.arm === arm.name && r.step === step)) {
              const klTemperature = config.kl_config.temperature ?? config.generation_config.temperature
              const refDir = path.join(options.out, `seed-${seed}`, reference!, CHECKPOINT_DIR)
              const { inputs, base } = yield* probeLock.withPermits(1)(
                Effect.gen(function*() {
                  if (probe === undefined) probe = { inputs: yield* Effect.provide(klInputs(config, options.datasets.train), layer), reference: new Map() }
                  // the reference at the temperature the arm is measured at (an arm sampling at another compares at its own)
                  const refKey = `${refDir}@${klTemperature}`
                  let base = probe.reference.get(refKey)
                  if (base === undefined) {
                    const refArm = arms.find((a) => a.name === reference)!
                    // the reference's distributions are kept; the policy that gave them is released
                    base = yield* Effect.scoped(
                      Effect.flatMap(
                        Effect.provide(scopedPolicyFromCheckpoint(refDir, config), armComponents(experiment, refArm, config).policy),
                        (refPolicy) => outputDistributions(refPolicy, probe!.inputs, klTemperature)
                      )
                    )
                    probe.reference.set(refKey, base)
                  }
                  return { inputs: probe.inputs, base }
                })
              )
              const kl = yield* timed("kl", measureKl(base, policy, inputs, klTemperature))
              const r: KlRecord = {
                seed,
                ...tagBase,
                arm: arm.name,
                step,
                total,
                samples: offset + samples,
                reference: reference!,
                kl: kl.total,
                parts: kl.parts,
                inputs: kl.inputs
              }
              appendRecord(klFile, r)
              klDone.push(r)
              yield* tracker.log({
                kind: "kl",
                seed,
                arm: arm.name,
                step,
                samples: r.samples,
                kl: r.kl,
                ...Object.fromEntries(Object.entries(r.parts).map(([k, v]) => [`kl_${k}`, v]))
              })
            }
          })
        const hook = (
          step: number,
          policy: PolicyService,
          info: { samples: number }
        ) => (wanted.includes(step) ? evaluate(step, policy, info.samples) : Effect.void)
        const parent = arm.recipe.from === undefined ? undefined : path.join(options.out, `seed-${seed}`, arm.recipe.from, CHECKPOINT_DIR)
        progress.log(`— seed ${seed}, arm ${arm.name} (${arm.recipe.kind}${parent === undefined ? "" : ` from ${arm.recipe.from}`})`)
        const data = datasetDir(components.dataset, options.datasets)
        const train = Effect.gen(function*() {
          switch (arm.recipe.kind) {
            case "pretrain":
              return yield* trainPretrain(config, dir, progress)
            case "sft":
              return yield* trainSft(config, data, dir, progress, { ...(parent === undefined ? {} : { init: parent }), afterEpoch: hook })
            case "ppo":
              return yield* trainPpo(config, parent!, data, dir, progress, { afterUpdate: hook })
            case "rft": {
              const sampler = arm.recipe.samples === SELF ? SELF : path.join(options.out, `seed-${seed}`, arm.recipe.samples, CHECKPOINT_DIR)
              return yield* trainRft(config, parent!, sampler, data, dir, progress, { afterUpdate: hook })
            }
          }
        })
        // training's records reach the run's trackers as they happen, marked with the arm and seed
        yield* Effect.provide(Effect.provideService(train, Tracker, tagged(tracker, { arm: arm.name, seed })), layer)
        // the final point when training finished before (a resume, a cached base) or an
        // interruption fell between the last checkpoint and its evaluation: evaluate from disk
        const finished = () =>
          suites.every((s) => done.some((r) => r.seed === seed && r.arm === arm.name && r.step === total && r.suite === s.name)) &&
          (!measuresKl || klDone.some((r) => r.seed === seed && r.arm === arm.name && r.step === total))
        if (!finished()) {
          yield* Effect.provide(
            Effect.scoped(
              Effect.flatMap(scopedPolicyFromCheckpoint(path.join(dir, CHECKPOINT_DIR), config), (policy) => evaluate(total, policy, readTrainingSamples(dir)))
            ),
            layer
          )
        }
        const final = done.find((r) => r.seed === seed && r.arm === arm.name && r.step === total)
        finalSamples.set(arm.name, final?.samples ?? offset)
        const seconds = (performance.now() - t0) / 1000
        const phase = {
          seed,
          ...tagBase,
          arm: arm.name,
          seconds,
          evaluation_seconds: spent.evaluation,
          kl_seconds: spent.kl,
          training_seconds: seconds - spent.evaluation - spent.kl
        }
        // an arm found finished (a resume, a shared base) did no work worth a line
        if (seconds < 1 && spent.evaluation === 0) return
        appendLine(path.join(options.out, PHASES_FILE), phase)
        progress.log(
          `— seed ${seed}, arm ${arm.name}: ${seconds.toFixed(1)} s (training ${phase.training_seconds.toFixed(1)}, evaluation ${
            spent.evaluation.toFixed(1)
          }, KL ${spent.kl.toFixed(1)})`
        )
      })
    const parallel = Math.min(seeds.length, Math.max(1, Math.floor(options.parallelSeeds ?? 1)))
    if (parallel === 1) {
      for (const seed of seeds) for (const arm of arms) yield* runArm(seed, arm)
    } else {
      // the bases first (each built once and shared by its seeds: the first alone, as it may build
      // the pretraining mixture the others read; the others side by side), then each seed's arms in
      // order, seeds side by side
      const base = arms.filter((a) => a.recipe.kind === "pretrain")
      const builders: number[] = []
      for (const seed of seeds) if (!builders.some((b) => baseOf(experiment, b) === baseOf(experiment, seed))) builders.push(seed)
      const buildBases = (group: ReadonlyArray<number>) =>
        Effect.forEach(group, (seed) => Effect.forEach(base, (arm) => runArm(seed, arm), { discard: true }), { concurrency: parallel, discard: true })
      yield* buildBases(builders.slice(0, 1))
      yield* buildBases(builders.slice(1))
      for (const seed of seeds) if (!builders.includes(seed)) { for (const arm of base) yield* runArm(seed, arm) }
      const rest = arms.filter((a) => a.recipe.kind !== "pretrain")
      if (options.seedProcess === undefined) {
        yield* Effect.forEach(seeds, (seed) => Effect.forEach(rest, (arm) => runArm(seed, arm), { discard: true }), { concurrency: parallel, discard: true })
      } else {
        const seedProcess = options.seedProcess
        progress.log(`seeds ${seeds.join(", ")}: ${parallel} processes side by side, each one's output in ${path.join(options.out, "seed-S", SEED_LOG)}`)
        // progress: the seeds' evaluations as they land in evals.jsonl
        const owned = new Set(rest.map((a) => a.name))
        const expected = seeds.length * rest.reduce((n, arm) => n + points(recipeLength(arm, resolved[arm.name]!), count).length * suites.length, 0)
        const landed = () => {
          try {
            return readEvals(evalsFile, { repair: false }).filter((r) => seeds.includes(r.seed) && owned.has(r.arm)).length
          } catch {
            return 0
          }
        }
        const bar = progress.bar(`evaluations of seeds ${seeds.join(", ")}`)
        let shown = -1
        const update = () => {
          const now = Math.min(landed(), expected)
          if (now !== shown) bar(shown = now, expected)
        }
        const watch = yield* Effect.fork(Effect.repeat(Effect.sync(update), Schedule.spaced("2 seconds")))
        // every seed runs to its end; a failed one does not stop the others
        const failures = (yield* Effect.forEach(seeds, (seed) => Effect.either(seedProcess(seed)), { concurrency: parallel })).flatMap((
          r
        ) => (Either.isLeft(r) ? [r.left.message] : []))
        yield* Fiber.interrupt(watch)
        update()
        if (failures.length > 0) return yield* new ExperimentError({ message: failures.join("\n") })
      }
    }
    if (options.part !== true) writeRunConfig(options.out, experiment, seeds, options.quick === true, resolved)
    return readEvals(evalsFile, { repair })
  })

const writeRunConfig = (out: string, experiment: Experiment, seeds: ReadonlyArray<number>, quick: boolean, arms: Readonly<Record<string, RunConfig>>) =>
  writeFileAtomic(path.join(out, "config.json"), JSON.stringify({ experiment: experiment.name, seeds, quick, provenance: provenance(), arms }, null, 2))

/**
 * Training samples an arm has seen, from its metrics log (for an evaluation done after a resume):
 * behaviour cloning logs its data set's size each epoch, on-policy arms each rollout's.
 */
const readTrainingSamples = (dir: string): number =>
  readRecords<Record<string, unknown>>(path.join(dir, "metrics.jsonl")).reduce((sum, r) => sum + (Number(r["samples"]) || 0), 0)
