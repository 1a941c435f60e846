import type { FrontierClaim, FrontierMetric, FrontierSpec } from "../core/experiment.ts"
import type { ActionBreakdown } from "../core/evaluation.ts"

/** What a frontier comparison reports (results.json's `frontier`): see frontier.ts for how it is computed. */

/**
 * An estimate with its 95 % interval: a t-interval, `mean ± t(df) · se`, where `se` combines the
 * spread between replicates (bases, or seeds where there is one base) and the sampling of routes.
 * `p` is the two-sided p-value of the estimate being 0 (meaningful for gains and differences).
 */
export interface Estimate {
  readonly mean: number
  readonly lo: number
  readonly hi: number
  readonly se: number
  readonly df: number
  readonly p: number
}

/** Per metric, per suite. */
export type Values = Readonly<Record<FrontierMetric, Readonly<Record<string, Estimate>>>>

/** One evaluation point of one configuration. */
export interface FrontierPoint {
  readonly arm: string
  readonly method: string
  readonly step: number
  readonly total: number
  readonly samples: number
  /** Every suite's accuracy (the validation suite's too), per metric. */
  readonly values: Values
  readonly kl: number | null
}

export interface Comparison {
  readonly a: string
  readonly b: string
  readonly suite: string
  readonly metric: FrontierMetric
  /** The validation accuracy (or KL, nats) the methods are matched at. */
  readonly level: number
  readonly label: string
  readonly a_value: Estimate
  readonly b_value: Estimate
  readonly difference: Estimate
}

/** A point of a method with its gains over the start. */
export interface Chosen {
  readonly method: string
  readonly arm: string
  readonly step: number
  readonly total: number
  readonly values: Values
  /** The point minus the start, per metric and suite. */
  readonly gain: Values
  readonly kl: number | null
}

export interface FactorSplit {
  readonly method: string
  readonly metric: FrontierMetric
  /** Drops from the in-distribution suite at the chosen point: another angle, another look, both. */
  readonly geometry: Estimate
  readonly appearance: Estimate
  readonly both: Estimate
}

/** One configuration's path: the start, then its evaluation points in training order (point estimates). */
export interface FrontierPath {
  readonly method: string
  readonly arm: string
  /** The configuration the method's chosen point belongs to: its curve in matched comparisons. */
  readonly chosen: boolean
  readonly points: ReadonlyArray<
    { readonly arm: string; readonly step: number; readonly values: Readonly<Record<FrontierMetric, Readonly<Record<string, number>>>> }
  >
}

export interface ClaimResult extends FrontierClaim {
  /** The statistic as read: "ppo-outcome − start", say. */
  readonly statistic: string
  readonly estimate: Estimate
  /** Holm-adjusted over the study's claims. */
  readonly holm_p: number
  /** "supported", "contradicted" (significant the other way), or "not shown" (family-wise 5 %). */
  readonly verdict: "supported" | "contradicted" | "not shown"
}

export interface Replication {
  /** What the intervals' t runs over: bases (several pretrained bases), seeds (one base), or routes alone (one seed). */
  readonly unit: "base" | "seed" | "route"
  readonly units: number
  readonly df: number
  /** Seeds per base, by base. */
  readonly seedsPerBase: Readonly<Record<string, number[]>>
}

export interface FrontierResults {
  readonly spec: FrontierSpec
  readonly seeds: number[]
  readonly replication: Replication
  /** The suite choices are made on (the validation suite, or the in-distribution test suite when there is none). */
  readonly chosenOn: string
  /** Routes per suite. */
  readonly routes: Readonly<Record<string, number>>
  readonly configurations: Readonly<Record<string, string[]>>
  readonly start?: FrontierPoint
  readonly reference?: FrontierPoint
  readonly points: FrontierPoint[]
  readonly paths: FrontierPath[]
  /** Each method's chosen configuration, interpolated at the same validation accuracy as the other's. */
  readonly matched_indist: Comparison[]
  /** The mean OOD accuracy of each method's points within a band of KL. */
  readonly matched_kl: Comparison[]
  /** One point per method, chosen on the validation suite. */
  readonly selected: Chosen[]
  readonly selected_differences: Comparison[]
  /** Every configuration's final point, no choice made. */
  readonly finals: Chosen[]
  readonly factors: FactorSplit[]
  readonly claims: ClaimResult[]
  /**
   * What success is made of, at the start and each configuration's final point (summed over seeds):
   * per ground-truth action, answers and correct ones, and where failed routes ended. The report
   * adds it from the run folder (records, or traces of final points).
   */
  readonly answers?: ReadonlyArray<{ readonly arm: string; readonly method: string; readonly suite: string; readonly breakdown: ActionBreakdown }>
  /** Why a part could not be computed, and what the statistics rest on. */
  readonly notes: string[]
}
