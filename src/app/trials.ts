import { Effect, Either } from "effect"
import * as path from "node:path"
import { type Sweep, type Trial, trials } from "../core/experiment.ts"
import { armComponents, trainingLayer } from "./components.ts"
import { armConfig } from "./run.ts"
import { fileTail, runVirlProcess } from "./processes.ts"
import { ensureBase } from "./base-model.ts"
import type { Progress } from "./train.ts"

/** A trial's folder name: its label with anything a file system may refuse replaced. */
export const trialFolder = (label: string) => label.replace(/[^A-Za-z0-9_.=,-]/g, "_")

export interface TrialCommand {
  readonly file: string
  readonly label: string
  readonly dir: string
  readonly quick: boolean
  /** Dotted config overrides, as on the sweep's command line. */
  readonly overrides: Readonly<Record<string, unknown>>
  /** Stream the trial to W&B (its W&B runs grouped by the trial). */
  readonly wandb?: boolean
  /** Stop the trial when this process has been silent this many seconds (a cluster runner's failover time; see runVirlProcess). */
  readonly silence?: number
}

/**
 * Runs one trial as a child `virl run FILE --trial LABEL` (resumable: a trial killed half-way
 * continues from its checkpoints), its output in the trial's run.log. The exit code is returned.
 */
export const runTrialProcess = (trial: TrialCommand) =>
  runVirlProcess(
    [
      "run",
      trial.file,
      "--trial",
      trial.label,
      "--out",
      trial.dir,
      ...(trial.quick ? ["--quick"] : []),
      ...(trial.wandb === true ? ["--wandb"] : []),
      ...Object.entries(trial.overrides).map(([k, v]) => `--${k}=${v}`)
    ],
    path.join(trial.dir, "run.log"),
    trial.silence === undefined ? {} : { silence: trial.silence }
  )

/** The last lines of a trial's run.log, for an error message. */
export const logTail = (dir: string, lines = 5): string => fileTail(path.join(dir, "run.log"), lines)

/**
 * Builds the base models the trials start from, once, before trials run side by side (each
 * would otherwise build the same one at the same time).
 */
export const prepareTrials = (
  sweep: Sweep,
  chosen: ReadonlyArray<Trial>,
  options: { readonly quick: boolean; readonly overrides: Readonly<Record<string, unknown>>; readonly progress: Progress }
) =>
  Effect.forEach(chosen, (t) =>
    Effect.forEach(t.experiment.arms.filter((a) => a.recipe.kind === "pretrain"), (arm) =>
      Effect.gen(function*() {
        const config = yield* Either.match(armConfig(t.experiment, arm, { quick: options.quick, overrides: options.overrides }, t.experiment.seeds[0]), {
          onLeft: Effect.fail,
          onRight: Effect.succeed
        })
        yield* Effect.provide(ensureBase(config, options.progress), trainingLayer(armComponents(t.experiment, arm, config)))
      }))).pipe(Effect.asVoid)

/** The trial of a sweep with this label, or undefined. */
export const trialByLabel = (sweep: Sweep, label: string) => trials(sweep).find((t) => t.label === label)
