import type { FrontierSpec } from "../core/experiment.ts"

/** What a frontier comparison reports (results.json's `frontier`): see frontier.ts for how it is computed. */

/** An estimate and its 95 % percentile bootstrap interval; `defined` is the share of replicates where it exists. */
export interface Estimate {
  readonly mean: number
  readonly lo: number
  readonly hi: number
  readonly defined: number
}

/** One evaluation point of one configuration: per-step accuracies (mean over seeds) and KL. */
export interface FrontierPoint {
  readonly arm: string
  readonly method: string
  readonly step: number
  readonly total: number
  readonly samples: number
  readonly indist: Estimate
  readonly ood: Readonly<Record<string, Estimate>>
  readonly success: Readonly<Record<string, number>>
  readonly kl: number | null
}

export interface Comparison {
  readonly a: string
  readonly b: string
  readonly suite: string
  /** In-distribution accuracy (or KL, nats) the methods are matched at. */
  readonly level: number
  readonly label: string
  readonly a_value: Estimate
  readonly b_value: Estimate
  readonly difference: Estimate
}

export interface Selected {
  readonly method: string
  readonly arm: string
  readonly step: number
  readonly indist: Estimate
  readonly ood: Readonly<Record<string, Estimate>>
  /** OOD accuracy of the selected point minus the start's, per suite. */
  readonly gain: Readonly<Record<string, Estimate>>
  readonly kl: number | null
}

export interface FactorSplit {
  readonly method: string
  /** Drops from the in-distribution suite, per-step accuracy points: another angle, another look, both. */
  readonly geometry: Estimate
  readonly appearance: Estimate
  readonly both: Estimate
}

export interface FrontierBand {
  readonly method: string
  readonly suite: string
  /** [in-distribution accuracy, frontier mean, lower, upper] on a grid. */
  readonly points: ReadonlyArray<readonly [number, number, number, number]>
}

export interface FrontierResults {
  readonly spec: FrontierSpec
  readonly seeds: number[]
  readonly replicates: number
  /** The bootstrap generator's seed. */
  readonly bootstrap_seed: number
  /** Routes per suite the intervals draw from. */
  readonly routes: Readonly<Record<string, number>>
  readonly configurations: Readonly<Record<string, string[]>>
  readonly start?: FrontierPoint
  readonly reference?: FrontierPoint
  readonly points: FrontierPoint[]
  /** Each method's frontier (points on it, by in-distribution accuracy) per OOD suite. */
  readonly frontiers: Readonly<Record<string, Readonly<Record<string, ReadonlyArray<readonly [number, number]>>>>>
  readonly bands: FrontierBand[]
  /** Matched in-distribution accuracy: each method's best OOD accuracy at that in-distribution accuracy or more. */
  readonly matched_indist: Comparison[]
  /** Matched KL: the mean OOD accuracy of each method's points within a band of KL around the level. */
  readonly matched_kl: Comparison[]
  readonly selected: Selected[]
  readonly selected_differences: Comparison[]
  /**
   * Per method and suite (in-distribution too): the most any of its points gains over the start —
   * does the method raise accuracy above its start anywhere on its frontier? A maximum over many
   * points leans upward; the bootstrap redraws the maximum, so its interval carries that.
   */
  readonly best_gain: Readonly<Record<string, Readonly<Record<string, Estimate>>>>
  readonly factors: FactorSplit[]
  /** Why a part could not be computed (unfinished seeds, a method short of configurations). */
  readonly notes: string[]
}
