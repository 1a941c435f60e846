import type { Layer } from "effect"
import type { ActionSpace } from "./action-space.ts"
import type { Optimizer } from "./optimizer.ts"
import type { Policy } from "./policy.ts"
import type { Random } from "./random.ts"
import type { Reward } from "./reward.ts"
import type { Sharding } from "./sharding.ts"
import type { Tracker } from "./tracker.ts"

/** A dataset by its role in the default splits, or a folder in the VIRL_routes format, or a synthetic city. */
export type DatasetRef = "train" | "eval" | "visual-ood" | { readonly dir: string } | SyntheticCityRef

/**
 * A synthetic city made on first use and cached: a style (`nyc`, `sf`, `varied:N`, each
 * optionally `@B` for its street grid turned to bearing B), the layout's seed, and its routes —
 * those drawn after the city's first `after` routes (default 0), so a suite can hold out routes
 * of a city whose first routes train a model. A suite's city has as many routes as it has
 * episodes unless `routes` says otherwise.
 */
export interface SyntheticCityRef {
  readonly synth: string
  readonly seed: number
  readonly after?: number
  readonly routes?: number
}

/**
 * The swappable parts of a run, each an Effect layer (or, for data, where to find it). An arm
 * takes what it leaves out from its experiment, then from the defaults (the V-IRL training
 * routes, absolute actions, the process reward, the tfjs policy, AdamW, Python's generator, JSONL
 * tracking).
 */
export interface Components {
  /** The routes training episodes are drawn from. */
  readonly dataset?: DatasetRef
  readonly actionSpace?: Layer.Layer<ActionSpace>
  readonly reward?: Layer.Layer<Reward>
  readonly policy?: Layer.Layer<Policy>
  readonly optimizer?: Layer.Layer<Optimizer>
  /** Where the work runs (local, worker threads); results do not depend on it. */
  readonly sharding?: Layer.Layer<Sharding>
  /** Where every generator of the run comes from (the trainer's, the environments', evaluation's). */
  readonly random?: Layer.Layer<Random>
  /** Where run-level metrics go besides the run folder's JSONL (experiment level only). */
  readonly tracker?: Layer.Layer<Tracker>
}

/** Later components win, part by part. */
export const mergeComponents = (...parts: ReadonlyArray<Components | undefined>): Components =>
  Object.assign({}, ...parts.map((p) => Object.fromEntries(Object.entries(p ?? {}).filter(([, v]) => v !== undefined))))

/**
 * An evaluation suite: a dataset and an action space (and, rarely, a reward) to evaluate every
 * arm on. The paper's three ship in src/app/suites.ts; a user declares a fourth in their file.
 */
export interface SuiteSpec {
  /** Names the suite in records, logs and tables (letters, digits, `-`, `_`). */
  readonly name: string
  /** The column title in the table and plots (default: the name). */
  readonly title?: string
  readonly dataset: DatasetRef
  /** The rules the policy is asked to answer in (default: the experiment's). */
  readonly actionSpace?: Layer.Layer<ActionSpace>
  /** How answers are scored for `mean_reward` (default: the paper's process reward). */
  readonly reward?: Layer.Layer<Reward>
  /** Episodes per evaluation (default: eval_config.num_traj, num_traj_visual for "visual-ood" data). */
  readonly episodes?: number
  /**
   * Config values the suite evaluates under, over each arm's own (dotted keys): arms trained
   * with other settings — `env_config.verify_iter`, say — are then measured alike.
   */
  readonly config?: Readonly<Record<string, unknown>>
}

/**
 * An experiment is a plain value exported from a file in experiments/: named arms, each a
 * training recipe plus layer and config overrides, evaluated on suites over several seeds.
 */
export type Recipe =
  /** The base model: behaviour cloning on the broad pretraining mixture, built once and cached (`pretrain_config`). */
  | { readonly kind: "pretrain"; readonly from?: undefined }
  /** Supervised fine-tuning on expert trajectories, from scratch or continuing another arm. */
  | { readonly kind: "sft"; readonly from?: string }
  /** PPO starting from another arm's final checkpoint. */
  | { readonly kind: "ppo"; readonly from: string }
  /**
   * Rejection-sampling fine-tuning from another arm's checkpoint: SFT on outputs the environment
   * verified as correct, written by `samples` — another arm's final policy (e.g. the base: RL's
   * Razor's "oracle SFT") or `"self"`, the policy being trained (expert iteration).
   */
  | { readonly kind: "rft"; readonly from: string; readonly samples: string }

export interface Arm {
  readonly name: string
  readonly recipe: Recipe
  /** Config values for this arm (dotted keys or nested objects, checked against the schema). */
  readonly config?: Readonly<Record<string, unknown>>
  /** Layers this arm trains with, over the experiment's. */
  readonly layers?: Components
  /** Shorthand for `layers.reward`. */
  readonly reward?: Layer.Layer<Reward>
  /** Config values for this arm under `--quick`, over the experiment's `quick`. */
  readonly quick?: Readonly<Record<string, unknown>>
  /** Leave the arm out of the results table and plots (a shared initialisation, say). */
  readonly hidden?: boolean
  /**
   * The method this arm is one configuration of (see `configurations`): a frontier study
   * compares methods, each over all of its configurations.
   */
  readonly method?: string
  /** Set by a sweep trial: its values for this arm, over the arm's own (see `trials`). */
  readonly sweep?: { readonly config: Readonly<Record<string, unknown>>; readonly layers: Components }
}

/** The paper's suites by name (src/app/suites.ts), or a suite of your own. */
export type Suite = "indist" | "rule-ood" | "visual-ood" | SuiteSpec

export interface Experiment {
  readonly name: string
  readonly description?: string
  readonly arms: ReadonlyArray<Arm>
  readonly suites: ReadonlyArray<Suite>
  readonly seeds: ReadonlyArray<number>
  /**
   * Independently pretrained bases, by their pretraining seed (`pretrain_config.seed`). With them,
   * seed S trains from base `bases[(S − 1) mod B]` (see `baseOf`): a replicate is a training seed
   * within a base, and a frontier's intervals run over bases, not only seeds. Without them every
   * seed shares the one base `pretrain_config.seed` makes.
   */
  readonly bases?: ReadonlyArray<number>
  /** The seeds `--quick` runs (default: the first of `seeds`). */
  readonly quickSeeds?: ReadonlyArray<number>
  /** Config values for every arm. */
  readonly config?: Readonly<Record<string, unknown>>
  /** Layers for every arm (and the tracker of the run). */
  readonly layers?: Components
  /** Config values `--quick` applies on top: fewer routes, epochs and updates. */
  readonly quick?: Readonly<Record<string, unknown>>
  /** Evaluation points along each arm's training (epochs for SFT, updates for PPO), for the curves. */
  readonly evaluations?: number
  /**
   * Where the per-step evaluation logs (the reference's format) and episode traces (`virl view`)
   * are written: at every evaluation point (default) or at each arm's final point only — a
   * frontier study's many points otherwise write gigabytes; its statistics need only evals.jsonl.
   */
  readonly evaluationLogs?: "all" | "final"
  /**
   * Measure KL(π_ref ‖ π) against this arm's final policy at every evaluation point of the arms
   * trained from it, on in-distribution training inputs (RL's Razor's measure of how far
   * post-training moved); `kl_config.routes` sets how many training routes' states.
   */
  readonly klReference?: string
  /** Compare methods along their frontiers (see `FrontierSpec`); the report adds the comparison. */
  readonly frontier?: FrontierSpec
}

/** What a frontier compares: per-step accuracy (correct answers over answers) or success rate (routes completed). */
export type FrontierMetric = "step" | "success"

/**
 * One claim of the paper, tested on a frontier study's records: a method's chosen point against
 * the start (`gain`), two methods' chosen points (`difference`), or two methods at the highest
 * in-distribution accuracy both reach (`matched`). The claims of a study are one family: their
 * p-values are Holm-corrected together.
 */
export interface FrontierClaim {
  /** The claim in a few words ("RL raises visual-OOD success above its start"). */
  readonly claim: string
  /** Where the paper shows it, with its numbers ("Fig. 7, V-IRL-VL: 16.7 → 77.8"). */
  readonly paper: string
  readonly metric: FrontierMetric
  /** The OOD suite (or the in-distribution one) it is read on. */
  readonly suite: string
  readonly test:
    | { readonly gain: string }
    | { readonly difference: readonly [string, string] }
    | { readonly matched: readonly [string, string] }
  /** The sign the paper claims (default "up": a gain, or a − b > 0). */
  readonly direction?: "up" | "down"
}

/**
 * How a frontier study compares its methods. Each method is the arms tagged with its name, each
 * arm one configuration evaluated at every evaluation point. Every choice — a method's chosen
 * point and configuration, the levels it is matched at — is made on the validation suite, never
 * on a test suite; everything here is fixed before the run and the same for every method.
 */
export interface FrontierSpec {
  /** The methods compared, by the `method` their arms carry; every method must have as many configurations. */
  readonly methods: ReadonlyArray<string>
  /** The arm every method starts from (shown as the common start; "gain" is measured from it). */
  readonly start?: string
  /** The in-distribution test suite and the OOD suites, by name. */
  readonly indist: string
  readonly ood: ReadonlyArray<string>
  /**
   * In-distribution routes disjoint from every test suite's, on which points and configurations
   * are chosen and in-distribution accuracy is matched. Without one, choices are made on `indist`
   * — the test — and the report says so.
   */
  readonly validation?: string
  /**
   * The rule that picks one point per method: the highest validation accuracy in `metric`
   * (default per-step accuracy), at any evaluation point or at final points only (ties: the first
   * arm in name order, then the earlier point). The chosen point's configuration is the method's
   * curve for matched comparisons.
   */
  readonly select?: { readonly by?: "indist"; readonly at: "any" | "final"; readonly metric?: FrontierMetric }
  /** Pairs compared, [a, b] reporting a − b (default: every pair, in the order of `methods`). */
  readonly compare?: ReadonlyArray<readonly [string, string]>
  /** Older run folders' bootstrap draws; intervals are t-intervals now (see frontier.ts). */
  readonly bootstrap?: number
  /**
   * Suites that split a visual shift in two: the in-distribution city seen on another street-grid
   * angle (`geometry`), another look on the training angle (`appearance`), and both (`both`).
   */
  readonly factors?: { readonly geometry: string; readonly appearance: string; readonly both: string }
  /** The paper's claims this study tests (one Holm family). */
  readonly claims?: ReadonlyArray<FrontierClaim>
}

/**
 * Arms that are configurations of one method: `base` (recipe, layers, config) plus each
 * configuration's config values, named `METHOD@LABEL` and tagged with the method.
 */
export const configurations = (
  method: string,
  base: Omit<Arm, "name" | "method" | "config"> & { readonly config?: Readonly<Record<string, unknown>> },
  variants: ReadonlyArray<{ readonly label: string; readonly config: Readonly<Record<string, unknown>> }>
): Arm[] => variants.map((v) => ({ ...base, name: `${method}@${v.label}`, method, config: { ...base.config, ...v.config } }))

/**
 * One value of a sweep axis: a label, and what it changes — config values and layers — in every
 * arm, or in the arms it names. A sweep value wins over the experiment's and the arm's own.
 */
export interface SweepValue {
  readonly label: string
  readonly config?: Readonly<Record<string, unknown>>
  readonly layers?: Components
  /** Shorthand for `layers.reward`. */
  readonly reward?: Layer.Layer<Reward>
  /** The arms this value changes (default: all). */
  readonly arms?: ReadonlyArray<string>
}

/** A grid over config values or layers; every combination is one trial of `base`. */
export interface Sweep {
  readonly name: string
  readonly description?: string
  readonly base: Experiment
  readonly grid: Readonly<Record<string, ReadonlyArray<SweepValue>>>
  /** The arm whose results the comparison table shows. */
  readonly compare: string
}

/** The pretraining seed of the base seed `seed` trains from, when the experiment declares `bases`. */
export const baseOf = (e: Pick<Experiment, "bases">, seed: number): number | undefined => {
  const bases = e.bases ?? []
  if (bases.length === 0) return undefined
  const k = Math.round(seed - 1) % bases.length
  return bases[(k + bases.length) % bases.length]
}

export const experiment = (e: Experiment): Experiment => e
export const sweep = (s: Sweep): Sweep => s

export const isSweep = (x: unknown): x is Sweep => typeof x === "object" && x !== null && "grid" in x && "base" in x

export const isExperiment = (x: unknown): x is Experiment => typeof x === "object" && x !== null && "arms" in x && "suites" in x

export interface Trial {
  readonly label: string
  readonly values: Readonly<Record<string, string>>
  readonly experiment: Experiment
}

/** The grid's combinations (a product over the axes), each as an experiment whose arms carry the trial's changes. */
export const trials = (s: Sweep): Trial[] => {
  const axes = Object.entries(s.grid)
  const combos: Array<Array<[string, SweepValue]>> = axes.reduce<Array<Array<[string, SweepValue]>>>(
    (acc, [axis, values]) => acc.flatMap((c) => values.map((v) => [...c, [axis, v] as [string, SweepValue]])),
    [[]]
  )
  return combos.map((combo) => {
    const label = combo.map(([axis, v]) => `${axis}=${v.label}`).join(",")
    const applies = (arm: Arm, v: SweepValue) => v.arms === undefined || v.arms.includes(arm.name)
    return {
      label,
      values: Object.fromEntries(combo.map(([axis, v]) => [axis, v.label])),
      experiment: {
        ...s.base,
        name: `${s.name}/${label}`,
        arms: s.base.arms.map((arm) => {
          const own = combo.filter(([, v]) => applies(arm, v)).map(([, v]) => v)
          if (own.length === 0) return arm
          return {
            ...arm,
            sweep: {
              config: Object.assign({}, ...own.map((v) => v.config ?? {})),
              layers: mergeComponents(...own.map((v) => mergeComponents(v.reward === undefined ? {} : { reward: v.reward }, v.layers)))
            }
          }
        })
      }
    }
  })
}
