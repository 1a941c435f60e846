import type { Layer } from "effect"
import type { Reward } from "./reward.ts"

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
  /** The Reward layer PPO trains with (default: the paper's process reward). */
  readonly reward?: Layer.Layer<Reward>
  /** Leave the arm out of the results table and plots (a shared initialisation, say). */
  readonly hidden?: boolean
}

export type Suite = "indist" | "rule-ood" | "visual-ood"

export interface Experiment {
  readonly name: string
  readonly description?: string
  readonly arms: ReadonlyArray<Arm>
  readonly suites: ReadonlyArray<Suite>
  readonly seeds: ReadonlyArray<number>
  /** Config values for every arm. */
  readonly config?: Readonly<Record<string, unknown>>
  /** Config values `--quick` applies on top: fewer routes, epochs and updates. */
  readonly quick?: Readonly<Record<string, unknown>>
  /** Evaluation points along each arm's training (epochs for SFT, updates for PPO), for the curves. */
  readonly evaluations?: number
  /**
   * Measure KL(π_ref ‖ π) against this arm's final policy at every evaluation point of the arms
   * trained from it, on in-distribution training inputs (RL's Razor's measure of how far
   * post-training moved); `kl_config.routes` sets how many training routes' states.
   */
  readonly klReference?: string
}

/** One value of a sweep axis: a label, and what it changes in the experiment. */
export interface SweepValue {
  readonly label: string
  readonly config?: Readonly<Record<string, unknown>>
  readonly reward?: Layer.Layer<Reward>
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

export const experiment = (e: Experiment): Experiment => e
export const sweep = (s: Sweep): Sweep => s

export const isSweep = (x: unknown): x is Sweep => typeof x === "object" && x !== null && "grid" in x && "base" in x

export const isExperiment = (x: unknown): x is Experiment => typeof x === "object" && x !== null && "arms" in x && "suites" in x

export interface Trial {
  readonly label: string
  readonly values: Readonly<Record<string, string>>
  readonly experiment: Experiment
}

/** The grid's combinations, each as an experiment whose arms carry the trial's changes. */
export const trials = (s: Sweep): Trial[] => {
  const axes = Object.entries(s.grid)
  const combos: Array<Array<[string, SweepValue]>> = axes.reduce<Array<Array<[string, SweepValue]>>>(
    (acc, [axis, values]) => acc.flatMap((c) => values.map((v) => [...c, [axis, v] as [string, SweepValue]])),
    [[]]
  )
  return combos.map((combo) => {
    const label = combo.map(([axis, v]) => `${axis}=${v.label}`).join(",")
    const config = Object.assign({}, s.base.config, ...combo.map(([, v]) => v.config ?? {}))
    const reward = combo.map(([, v]) => v.reward).find((r) => r !== undefined)
    return {
      label,
      values: Object.fromEntries(combo.map(([axis, v]) => [axis, v.label])),
      experiment: {
        ...s.base,
        name: `${s.name}/${label}`,
        config,
        arms: s.base.arms.map((arm) => (reward !== undefined && arm.recipe.kind === "ppo" ? { ...arm, reward } : arm))
      }
    }
  })
}
