import { Args, Command, Options } from "@effect/cli"
import { Effect, Either, Option } from "effect"
import { printError, reportError } from "./errors.ts"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { baseOf, type DatasetRef, type Experiment, isSweep, trials } from "../core/experiment.ts"
import { writeFileAtomic } from "../core/files.ts"
import { loadExperimentFile } from "../app/experiment-file.ts"
import { defaultDatasets } from "../app/services.ts"
import { provenance } from "../app/provenance.ts"
import { writeReport } from "../app/report.ts"
import { EXPERIMENT_FILE, type FrontierMeta, readRunMeta, RESULTS_FILE, SEED_LOG } from "../app/run-folder.ts"
import { fileTail, runVirlProcess } from "../app/processes.ts"
import type { RunConfig } from "../app/config.ts"
import { armConfig, ExperimentError, runExperiment } from "../app/run.ts"
import { PAPER_SUITES, suiteLabel, suiteSpecs } from "../app/suites.ts"
import { combine, Tracker, type TrackerService } from "../core/tracker.ts"
import * as Jsonl from "../plugins/tracker/jsonl.ts"
import * as TensorBoard from "../plugins/tracker/tensorboard.ts"
import * as Wandb from "../plugins/tracker/wandb.ts"
import { overridesHelp } from "./overrides.ts"
import { progressBar } from "./progress.ts"
import { CommandLine } from "./overrides.ts"
import { cliProgress } from "./progress.ts"
import { textSetting } from "../core/settings.ts"
import { commandConfig, configOption, presetOption } from "./options.ts"

const visibleArms = (e: Experiment) => e.arms.filter((a) => a.hidden !== true).map((a) => a.name)
const parentsOf = (e: Experiment): Record<string, string> =>
  Object.fromEntries(e.arms.flatMap((a) => (a.recipe.from === undefined ? [] : [[a.name, a.recipe.from]])))

const routeKey = (d: DatasetRef): string =>
  typeof d === "object" && "synth" in d ? JSON.stringify({ city: d.synth.split("@")[0], seed: d.seed, after: d.after ?? 0 }) : JSON.stringify(d)

/** What the report needs to compare an experiment's methods along their frontiers (none without a `frontier`). */
const frontierMeta = (e: Experiment): FrontierMeta | undefined =>
  e.frontier === undefined
    ? undefined
    : {
      spec: e.frontier,
      methodOf: Object.fromEntries(e.arms.map((a) => [a.name, a.method])),
      // suites on one dataset evaluate the same routes in the same order (a synthetic city's grid
      // turned keeps its routes): their route sampling is paired
      routeGroup: Object.fromEntries(suiteSpecs(e.suites).map((s) => [s.name, routeKey(s.dataset)])),
      ...(e.klReference === undefined ? {} : { klReference: e.klReference })
    }

/**
 * The run's trackers: local JSONL (the source of truth), TensorBoard event files under tb/, W&B
 * live when asked, and the experiment's own Tracker layer if it has one; each gets every record.
 */
const runTracker = (experiment: Experiment, out: string, wandb: boolean) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const warn = (line: string) => process.stderr.write(`${line}\n`)
      const trackers: TrackerService[] = [Jsonl.make(out), TensorBoard.make(out, warn)]
      if (wandb) trackers.push(Wandb.make(out, { ...Wandb.optionsFromEnv("virl"), group: experiment.name }, warn))
      if (experiment.layers?.tracker !== undefined) trackers.push(yield* Effect.provide(Tracker, experiment.layers.tracker))
      return combine(...trackers)
    }),
    // closed with the run's scope: after the report, or when the run fails or is interrupted
    (tracker) => tracker.close
  )

/**
 * Seeds side by side when --parallel-seeds is not given: one process per 4 cores (each drives its
 * environments on one thread and renders views on worker threads), so a 2-core machine runs them
 * one after another (docs/measurements.md has what side by side saved on 16 cores).
 */
export const defaultParallelSeeds = (): number => Math.max(1, Math.floor(os.availableParallelism() / 4))

/** Where an experiment came from, for the processes that run its seeds side by side. */
export interface ExperimentSource {
  readonly file: string
  /** A sweep's trial, by label. */
  readonly trial?: string
}

/** Runs one experiment into `out` and writes its report; returns the Markdown table. */
export const runAndReport = (
  experiment: Experiment,
  out: string,
  options: {
    seeds?: number[]
    quick: boolean
    wandb: boolean
    parallelSeeds?: number
    source?: ExperimentSource
    /** The config experiments start from (--preset, --config FILE), and those flags for the seeds' processes. */
    base?: RunConfig
    baseArgs?: ReadonlyArray<string>
  }
) =>
  Effect.gen(function*() {
    const t0 = performance.now()
    const commandLine = yield* CommandLine
    const labels = yield* Effect.try({
      try: () => suiteSpecs(experiment.suites).map(suiteLabel),
      catch: (e) => new ExperimentError({ message: `${experiment.name}: ${(e as Error).message}` })
    })
    const datasets = yield* defaultDatasets(progressBar("rendering panoramas"))
    const seeds = options.seeds ?? [...experiment.seeds]
    fs.mkdirSync(out, { recursive: true })
    const frontier = frontierMeta(experiment)
    writeFileAtomic(
      path.join(out, EXPERIMENT_FILE),
      JSON.stringify(
        {
          name: experiment.name,
          arms: visibleArms(experiment),
          plotted: experiment.arms.map((a) => a.name),
          parents: parentsOf(experiment),
          suites: labels,
          seeds,
          ...(experiment.bases === undefined ? {} : { bases: Object.fromEntries(seeds.map((s) => [s, baseOf(experiment, s)])) }),
          ...(frontier === undefined ? {} : { frontier })
        },
        null,
        2
      )
    )
    const tracker = yield* runTracker(experiment, out, options.wandb)
    const source = options.source
    // with a file to start them from, seeds side by side run as processes of their own
    const seedProcess = source === undefined
      ? undefined
      : (seed: number) => {
        const log = path.join(out, `seed-${seed}`, SEED_LOG)
        const args = [
          "run",
          source.file,
          "--out",
          out,
          "--only-seed",
          String(seed),
          ...(source.trial === undefined ? [] : ["--trial", source.trial]),
          ...(options.quick ? ["--quick"] : []),
          ...(options.wandb ? ["--wandb"] : []),
          ...(options.baseArgs ?? []),
          ...Object.entries(commandLine.overrides).map(([k, v]) => `--${k}=${v}`)
        ]
        return Effect.flatMap(runVirlProcess(args, log), (code) =>
          code === 0 ? Effect.void : Effect.fail(new ExperimentError({ message: `seed ${seed} exited with ${code}; the end of ${log}:\n${fileTail(log)}` })))
      }
    yield* runExperiment(experiment, {
      out,
      tracker,
      datasets,
      quick: options.quick,
      overrides: commandLine.overrides,
      ...(options.base === undefined ? {} : { base: options.base }),
      progress: cliProgress,
      seeds,
      ...(options.parallelSeeds === undefined ? {} : { parallelSeeds: options.parallelSeeds }),
      ...(seedProcess === undefined ? {} : { seedProcess })
    })
    const table = yield* Effect.tryPromise({
      try: () =>
        writeReport(
          out,
          experiment.name,
          visibleArms(experiment),
          labels,
          experiment.arms.map((a) =>
            a.name
          ),
          parentsOf(experiment),
          seeds,
          frontier,
          provenance()
        ),
      catch: (e) => new ExperimentError({ message: `cannot write the report of ${out}: ${(e as Error).message}` })
    })
    const seconds = (performance.now() - t0) / 1000
    yield* tracker.summary({ experiment: experiment.name, seconds, results: JSON.parse(fs.readFileSync(path.join(out, RESULTS_FILE), "utf8")) })
    return { table, seconds }
  }).pipe(Effect.scoped)

export const run = Command.make(
  "run",
  {
    file: Args.file({ name: "FILE", exists: "yes" }),
    seeds: Options.integer("seeds").pipe(Options.optional, Options.withDescription("run seeds 1..K instead of the experiment's own")),
    quick: Options.boolean("quick").pipe(
      Options.withDescription("the experiment's quick settings: its quick seeds (one by default), fewer routes, epochs and updates")
    ),
    out: Options.directory("out").pipe(Options.optional, Options.withDescription("run folder (default runs/<experiment>); re-running resumes it")),
    trial: Options.text("trial").pipe(Options.optional, Options.withDescription("one trial of a sweep file, by its label (virl sweep runs these)")),
    wandb: Options.boolean("wandb").pipe(
      Options.withDescription(
        "also stream to Weights & Biases as the run goes, one W&B run per arm and seed (WANDB_API_KEY, WANDB_PROJECT, WANDB_ENTITY); never blocks or fails the run"
      )
    ),
    parallelSeeds: Options.integer("parallel-seeds").pipe(
      Options.optional,
      Options.withDescription(
        "seeds trained side by side, each in a process of its own, after the shared base; same results (default: one per 4 cores, so 1 on small machines)"
      )
    ),
    printConfig: Options.boolean("print-config").pipe(
      Options.withDescription("print every arm's resolved config (defaults, experiment, arm, --quick, command line) as JSON and exit without running")
    ),
    preset: presetOption,
    configFile: configOption,
    onlySeed: Options.integer("only-seed").pipe(
      Options.optional,
      Options.withDescription("run this one seed's arms into --out and write no report (what --parallel-seeds starts for each seed once the base is built)")
    )
  },
  ({ file, seeds, quick, out, trial, wandb, parallelSeeds, printConfig, preset, configFile, onlySeed }) =>
    Effect.gen(function*() {
      const commandLine = yield* CommandLine
      // what the experiment's values go over: a preset, or a YAML file (configs/*.yaml) and its preset
      const base = yield* commandConfig(preset, configFile, {})
      const baseArgs = [...(preset === "small" ? [] : ["--preset", preset]), ...(Option.isSome(configFile) ? ["--config", configFile.value] : [])]
      const loaded = yield* loadExperimentFile(file)
      let experiment: Experiment
      if (isSweep(loaded)) {
        const all = trials(loaded)
        const chosen = all.find((t) => Option.isSome(trial) && t.label === trial.value)
        if (chosen === undefined) {
          return yield* printError(`${file} declares a sweep; run it with virl sweep ${file} (or --trial one of: ${all.map((t) => t.label).join(", ")})`)
        }
        experiment = chosen.experiment
      } else experiment = loaded
      const dir = Option.getOrElse(out, () => path.join("runs", experiment.name.replace(/[^A-Za-z0-9_.=,-]/g, "_") + (quick ? "-quick" : "")))
      const chosen = Option.isSome(seeds)
        ? Array.from({ length: seeds.value }, (_, i) => i + 1)
        : quick
        ? [...(experiment.quickSeeds ?? experiment.seeds.slice(0, 1))]
        : undefined
      if (Option.isSome(parallelSeeds) && parallelSeeds.value < 1) return yield* printError(`--parallel-seeds ${parallelSeeds.value}: give at least 1`)
      if (printConfig) {
        // the last seed's, as config.json shows them
        const seed = (chosen ?? [...experiment.seeds]).at(-1) ?? 1
        const arms: Record<string, RunConfig> = {}
        for (const arm of experiment.arms) {
          arms[arm.name] = yield* Either.match(armConfig(experiment, arm, { quick, overrides: commandLine.overrides, base }, seed), {
            onLeft: Effect.fail,
            onRight: Effect.succeed
          })
        }
        console.log(JSON.stringify({ experiment: experiment.name, seed, quick, arms }, null, 2))
        return
      }
      if (Option.isSome(onlySeed)) {
        // one seed of a parent run's --parallel-seeds: its records go into the parent's files, the report is the parent's
        if (Option.isSome(seeds) || Option.isSome(parallelSeeds)) return yield* printError("--only-seed runs one seed: leave out --seeds and --parallel-seeds")
        return yield* Effect.scoped(
          Effect.gen(function*() {
            yield* runExperiment(experiment, {
              out: dir,
              tracker: yield* runTracker(experiment, dir, wandb),
              datasets: yield* defaultDatasets(progressBar("rendering panoramas")),
              quick,
              overrides: commandLine.overrides,
              base,
              progress: cliProgress,
              seeds: [onlySeed.value],
              part: true
            })
          })
        )
      }
      const source = { file, ...(Option.isSome(trial) ? { trial: trial.value } : {}) }
      const { table, seconds } = yield* runAndReport(experiment, dir, {
        ...(chosen === undefined ? {} : { seeds: chosen }),
        quick,
        base,
        baseArgs,
        wandb,
        // a sweep's trial: the sweep already runs trials side by side
        parallelSeeds: Option.getOrElse(parallelSeeds, () => (Option.isSome(trial) ? 1 : defaultParallelSeeds())),
        source
      })
      console.log(`\n${table}`)
      console.log(`run folder: ${dir}  (results.json, results.md, plots/, evals.jsonl, seed-*/<arm>/checkpoint)`)
      console.log(`wall time: ${(seconds / 60).toFixed(1)} min`)
    }).pipe(Effect.catchAll(reportError))
).pipe(
  Command.withDescription(
    "Run an experiment file (experiments/*.ts): train every arm, evaluate every suite, write the table and plots. Dotted flags override config keys.\n\n" +
      overridesHelp()
  )
)

export const report = Command.make("report", { dir: Args.directory({ name: "RUN_DIR", exists: "yes" }) }, ({ dir }) =>
  Effect.gen(function*() {
    const file = path.join(dir, EXPERIMENT_FILE)
    if (!fs.existsSync(file)) return yield* printError(`${dir}: not a run folder (${EXPERIMENT_FILE} is missing)`)
    const meta = readRunMeta(dir)
    // older run folders list the paper's suites by name
    const labels = meta.suites.map((s) => (typeof s === "string" ? { name: s, title: PAPER_SUITES.find((p) => p.name === s)?.title ?? s } : s))
    const table = yield* Effect.tryPromise({
      try: () => writeReport(dir, meta.name, meta.arms, labels, meta.plotted ?? meta.arms, meta.parents ?? {}, meta.seeds, meta.frontier),
      catch: (e) => new ExperimentError({ message: `cannot write the report of ${dir}: ${(e as Error).message}` })
    })
    console.log(table)
  }).pipe(Effect.catchAll(reportError))).pipe(Command.withDescription("Re-render the results table and plots of a finished or interrupted run folder."))

export const sync = Command.make(
  "sync",
  {
    dir: Args.directory({ name: "RUN_DIR", exists: "yes" }),
    project: Options.text("project").pipe(Options.withDefault(textSetting("WANDB_PROJECT") ?? "virl"))
  },
  ({ dir, project }) =>
    Effect.gen(function*() {
      const result = yield* Wandb.uploadRun(dir, { ...Wandb.optionsFromEnv(project), project })
      if (result.ok) console.log(result.message)
      else yield* printError(result.message)
    })
).pipe(Command.withDescription("Upload a finished or offline run folder to Weights & Biases (WANDB_API_KEY); resumes where a previous upload stopped."))
