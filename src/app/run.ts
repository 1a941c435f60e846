import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Arm, Experiment, Suite } from "../core/experiment.ts"
import type { SuiteMetrics } from "../core/evaluation.ts"
import { writeFileAtomic } from "../core/files.ts"
import type { PolicyService } from "../core/policy.ts"
import type { DefaultDatasets } from "../plugins/dataset/synth/default.ts"
import { PRESETS, resolveConfig, type RunConfig } from "./config.ts"
import { evaluateSuite, loadPolicy } from "./evaluate.ts"
import type { TrackerService } from "../core/tracker.ts"
import * as Jsonl from "../plugins/tracker/jsonl.ts"
import { CHECKPOINT_DIR, silent, trainPpo, trainSft, type Progress } from "./train.ts"

export interface RunOptions {
  readonly out: string
  readonly seeds?: ReadonlyArray<number>
  readonly quick?: boolean
  /** Dotted overrides from the command line, applied last. */
  readonly overrides?: Readonly<Record<string, unknown>>
  readonly datasets: DefaultDatasets
  readonly progress?: Progress
  /** Where run-level metrics go (default: JSONL in the run folder). */
  readonly tracker?: TrackerService
}

/** One evaluation of one arm at one point of its training. */
export interface EvalRecord {
  readonly seed: number
  readonly arm: string
  /** Epochs (SFT) or updates (PPO) done. */
  readonly step: number
  readonly total: number
  /** Training samples seen since the start of the arm's lineage (the x axis of the curves). */
  readonly samples: number
  readonly suite: Suite
  readonly metrics: SuiteMetrics
}

export const armOrder = (arms: ReadonlyArray<Arm>): Arm[] => {
  const byName = new Map(arms.map((a) => [a.name, a]))
  const ordered: Arm[] = []
  const visit = (arm: Arm, trail: string[]) => {
    if (ordered.includes(arm)) return
    if (trail.includes(arm.name)) throw new Error(`arms ${[...trail, arm.name].join(" -> ")} form a cycle`)
    const from = arm.recipe.from
    if (from !== undefined) {
      const parent = byName.get(from)
      if (parent === undefined) throw new Error(`arm ${arm.name} starts from unknown arm ${JSON.stringify(from)}; arms: ${[...byName.keys()].join(", ")}`)
      visit(parent, [...trail, arm.name])
    }
    ordered.push(arm)
  }
  for (const arm of arms) visit(arm, [])
  return ordered
}

export const armConfig = (experiment: Experiment, arm: Arm, options: Pick<RunOptions, "quick" | "overrides">, seed: number): Either.Either<RunConfig, unknown> =>
  resolveConfig(PRESETS.small, [
    { source: `${experiment.name} config`, values: experiment.config ?? {} },
    ...(options.quick === true ? [{ source: `${experiment.name} quick`, values: experiment.quick ?? {} }] : []),
    { source: `arm ${arm.name}`, values: arm.config ?? {} },
    { source: "command line", values: options.overrides ?? {} },
    { source: "seed", values: { seed } }
  ])

const points = (total: number, count: number): number[] => [...new Set(Array.from({ length: count }, (_, k) => Math.max(1, Math.round(((k + 1) * total) / count))))]

export const readEvals = (file: string): EvalRecord[] =>
  fs.existsSync(file)
    ? fs
        .readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l.trim() !== "")
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as EvalRecord]
          } catch {
            return [] // a line cut by an interruption
          }
        })
    : []

/**
 * Runs every arm of an experiment for every seed, in dependency order, into `out`:
 * out/seed-S/ARM/{checkpoint, metrics.jsonl, config.json, evals.jsonl, eval-logs/}. Arms and
 * evaluation points already done are skipped, so the same command resumes an interrupted run.
 */
export const runExperiment = (experiment: Experiment, options: RunOptions) =>
  Effect.gen(function* () {
    const progress = options.progress ?? silent
    const seeds = options.seeds ?? experiment.seeds
    const arms = yield* Effect.try({ try: () => armOrder(experiment.arms), catch: (e) => e })
    fs.mkdirSync(options.out, { recursive: true })
    const evalsFile = path.join(options.out, "evals.jsonl")
    const tracker = options.tracker ?? Jsonl.make(options.out)
    const done = readEvals(evalsFile)
    const count = experiment.evaluations ?? 3
    const resolved: Record<string, RunConfig> = {}
    for (const seed of seeds) {
      const finalSamples = new Map<string, number>()
      for (const arm of arms) {
        const config = yield* Either.match(armConfig(experiment, arm, options, seed), { onLeft: Effect.fail, onRight: Effect.succeed })
        resolved[arm.name] = config
        const dir = path.join(options.out, `seed-${seed}`, arm.name)
        const offset = arm.recipe.from === undefined ? 0 : (finalSamples.get(arm.recipe.from) ?? 0)
        const total = arm.recipe.kind === "sft" ? config.sft_config.epochs : config.num_updates
        const wanted = points(total, count)
        const evaluate = (step: number, policy: PolicyService, samples: number) =>
          Effect.gen(function* () {
            for (const suite of experiment.suites) {
              if (done.some((r) => r.seed === seed && r.arm === arm.name && r.step === step && r.suite === suite)) continue
              const metrics = yield* evaluateSuite(config, policy, suite, options.datasets, {
                logFile: path.join(dir, "eval-logs", `${suite}-step${step}.jsonl`),
                onEpisode: progress.bar(`seed ${seed} ${arm.name} step ${step}/${total}: eval ${suite}`)
              })
              const record: EvalRecord = { seed, arm: arm.name, step, total, samples: offset + samples, suite, metrics }
              fs.appendFileSync(evalsFile, `${JSON.stringify(record)}\n`)
              done.push(record)
              yield* tracker.log({
                kind: "eval",
                seed,
                arm: arm.name,
                step,
                samples: offset + samples,
                suite,
                per_step_accuracy: metrics.per_step_accuracy,
                success_rate: metrics.success_rate,
                mean_reward: metrics.mean_reward
              })
            }
          })
        const hook = (step: number, policy: PolicyService, info: { samples: number }) => (wanted.includes(step) ? evaluate(step, policy, info.samples) : Effect.void)
        const parent = arm.recipe.from === undefined ? undefined : path.join(options.out, `seed-${seed}`, arm.recipe.from, CHECKPOINT_DIR)
        progress.log(`— seed ${seed}, arm ${arm.name} (${arm.recipe.kind}${parent === undefined ? "" : ` from ${arm.recipe.from}`})`)
        if (arm.recipe.kind === "sft") {
          yield* trainSft(config, options.datasets.train, dir, progress, { ...(parent === undefined ? {} : { init: parent }), afterEpoch: hook })
        } else {
          yield* trainPpo(config, parent!, options.datasets.train, dir, progress, arm.reward, { afterUpdate: hook })
        }
        // an interruption between the last checkpoint and its evaluation: evaluate from disk
        const last = done.filter((r) => r.seed === seed && r.arm === arm.name && r.step === total)
        if (last.length < experiment.suites.length) {
          const policy = yield* loadPolicy(path.join(dir, CHECKPOINT_DIR), config)
          const lineage = readTrainingSamples(dir)
          yield* evaluate(total, policy, lineage)
        }
        const final = done.find((r) => r.seed === seed && r.arm === arm.name && r.step === total)
        finalSamples.set(arm.name, final?.samples ?? offset)
      }
    }
    writeFileAtomic(path.join(options.out, "config.json"), JSON.stringify({ experiment: experiment.name, seeds, quick: options.quick === true, arms: resolved }, null, 2))
    return readEvals(evalsFile)
  })

/** Training samples an arm has seen, from its metrics log (for an evaluation done after a resume). */
const readTrainingSamples = (dir: string): number => {
  const file = path.join(dir, "metrics.jsonl")
  if (!fs.existsSync(file)) return 0
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .reduce((sum, l) => sum + (Number((JSON.parse(l) as Record<string, unknown>)["samples"]) || 0), 0)
}
