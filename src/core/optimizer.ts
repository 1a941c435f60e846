import { Context, Schema } from "effect"
import type { Parameters } from "./parameters.ts"

/** Optimiser settings with the reference's names (spec §10). */
export const OptimizerConfig = Schema.Struct({
  init_lr: Schema.Number,
  end_lr: Schema.Number,
  lr_max_steps: Schema.Number,
  eps: Schema.Number,
  beta1: Schema.Number,
  beta2: Schema.Number,
  weight_decay: Schema.Number,
  max_grad_norm: Schema.Number,
  grad_accum_steps: Schema.Number
})
export type OptimizerConfig = typeof OptimizerConfig.Type

export interface OptimizerStep {
  readonly learningRate: number
  /** Global gradient norm before clipping. */
  readonly gradNorm: number
  readonly step: number
}

export interface OptimizerState {
  readonly step: number
  readonly pending: number
  readonly moments: ReadonlyMap<string, { readonly m: Float32Array; readonly v: Float32Array }>
}

/** A copy of per-parameter moments: what `state()` hands out and `restore()` keeps, so neither side's later updates reach the other. */
export const copyMoments = (moments: OptimizerState["moments"]): Map<string, { m: Float32Array; v: Float32Array }> =>
  new Map([...moments].map(([k, { m, v }]) => [k, { m: m.slice(), v: v.slice() }]))

/**
 * One update from accumulated gradients: accumulate `grad_accum_steps` micro-batches, clip by
 * global norm, step with the scheduled learning rate.
 */
export interface OptimizerService {
  readonly config: OptimizerConfig
  /** Adds one micro-batch's gradients; returns the step taken when the accumulation is full. */
  readonly accumulate: (parameters: Parameters, gradients: Parameters) => OptimizerStep | undefined
  /** Applies whatever is accumulated now (end of an epoch). */
  readonly flush: (parameters: Parameters) => OptimizerStep | undefined
  readonly learningRate: (step: number) => number
  readonly state: () => OptimizerState
  readonly restore: (state: OptimizerState) => void
}

/** An optimizer plugin: one optimizer per training phase, from the phase's settings. */
export interface OptimizerFactory {
  readonly name: string
  readonly make: (config: OptimizerConfig) => OptimizerService
}

export class Optimizer extends Context.Tag("virl/Optimizer")<Optimizer, OptimizerFactory>() {}
