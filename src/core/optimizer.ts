import { Context, Schema } from "effect"
import type { Parameters } from "./parameters.ts"
import { atLeast, nonNegative, positive, range } from "./settings-schema.ts"

/** The optimizer's settings with the reference's names (its `optimizer_config`, spec §10). */
export const OptimizerSettings = Schema.Struct({
  init_lr: nonNegative,
  end_lr: nonNegative,
  lr_max_steps: atLeast(1),
  eps: positive,
  weight_decay: nonNegative,
  /** Adam's moment decay rates (the reference's defaults). */
  beta1: Schema.optionalWith(range(0, 0.9999), { default: () => 0.9 }),
  beta2: Schema.optionalWith(range(0, 0.99999), { default: () => 0.999 })
})

/** What one optimizer needs: those settings, global-norm clipping and gradient accumulation (from the phase's own section). */
export const OptimizerConfig = Schema.Struct({
  ...OptimizerSettings.fields,
  max_grad_norm: nonNegative,
  grad_accum_steps: atLeast(1)
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
