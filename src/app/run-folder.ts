import * as fs from "node:fs"
import * as path from "node:path"
import type { SuiteMetrics } from "../core/evaluation.ts"
import type { FrontierSpec } from "../core/experiment.ts"
import { readRecords } from "../core/files.ts"

/**
 * The run folder's format — what `virl run` writes and the report, the viewer, sweeps and the
 * cluster read: the files' names, their records, and how they are read and appended.
 *
 *   experiment.json   what the run is (RunMeta), written when the run is reported
 *   evals.jsonl       one EvalRecord per arm, seed, evaluation point and suite
 *   kl.jsonl          one KlRecord per arm, seed and evaluation point
 *   phases.jsonl      where each arm's time went (training, evaluation, KL), one line per arm run
 *   results.json/.md  the report; plots/*.png its figures
 *   seed-S/ARM/       checkpoint/, metrics.jsonl, config.json, eval-logs/; seed-S/run.log
 */
export const EXPERIMENT_FILE = "experiment.json"
export const EVALS_FILE = "evals.jsonl"
export const KL_FILE = "kl.jsonl"
export const RESULTS_FILE = "results.json"
/** One line per arm run (or resumed) by `virl run`: its seconds of training, evaluation and KL probe. */
export const PHASES_FILE = "phases.jsonl"
/** A seed's output when it runs in a process of its own (`--parallel-seeds`), in its seed-S folder. */
export const SEED_LOG = "run.log"

/** One evaluation of one arm at one point of its training. */
export interface EvalRecord {
  readonly seed: number
  /** The pretraining seed of the seed's base, where the experiment declares several (`Experiment.bases`). */
  readonly base?: number
  readonly arm: string
  /** Epochs (SFT, pretraining) or updates (PPO, RFT) done. */
  readonly step: number
  readonly total: number
  /** Training samples seen since the start of the arm's lineage (the x axis of the curves). */
  readonly samples: number
  /** The suite's name. */
  readonly suite: string
  readonly metrics: SuiteMetrics
}

/** KL(reference ‖ policy) of one arm at one point of its training, on the post-training task's inputs. */
export interface KlRecord {
  readonly seed: number
  readonly base?: number
  readonly arm: string
  readonly step: number
  readonly total: number
  readonly samples: number
  readonly reference: string
  /** Nats, mean over inputs, whole output. */
  readonly kl: number
  /** The same, part by part (action, instruction, observation). */
  readonly parts: Readonly<Record<string, number>>
  readonly inputs: number
}

/** A suite as the report names it: records carry `name`; tables and plots show `title`. */
export interface SuiteLabel {
  readonly name: string
  readonly title: string
}

/** What a run folder records for its frontier comparison. */
export interface FrontierMeta {
  readonly spec: FrontierSpec
  /** Each arm's method (configurations), undefined for the others. */
  readonly methodOf: Readonly<Record<string, string | undefined>>
  /** Suites on the same routes share a key (their dataset). */
  readonly routeGroup: Readonly<Record<string, string>>
  readonly klReference?: string
}

/** experiment.json: what the report needs to re-render a run without its experiment file. */
export interface RunMeta {
  readonly name: string
  /** The arms of the table. */
  readonly arms: string[]
  /** The arms of the curves (hidden ones too). */
  readonly plotted?: string[]
  /** Each continuing arm's parent, where its curve starts. */
  readonly parents?: Record<string, string>
  /** Older run folders list the paper's suites by name. */
  readonly suites: ReadonlyArray<string | SuiteLabel>
  readonly seeds?: number[]
  /** Each seed's base (its pretraining seed), where the experiment declares several. */
  readonly bases?: Readonly<Record<string, number>>
  readonly frontier?: FrontierMeta
}

export const readEvals = (file: string, options: { readonly repair?: boolean } = {}): EvalRecord[] => readRecords<EvalRecord>(file, options)
export const readKl = (file: string, options: { readonly repair?: boolean } = {}): KlRecord[] => readRecords<KlRecord>(file, options)

/** Appends one record as one write of one line: processes side by side append to the same file. */
export const appendLine = (file: string, record: unknown): void => fs.appendFileSync(file, `${JSON.stringify(record)}\n`)
export const appendRecord = (file: string, record: EvalRecord | KlRecord): void => appendLine(file, record)

export const readRunMeta = (dir: string): RunMeta => JSON.parse(fs.readFileSync(path.join(dir, EXPERIMENT_FILE), "utf8")) as RunMeta
