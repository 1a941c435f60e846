import { Effect, Schema } from "effect"
import { gae, normalise } from "./gae.ts"
import type { OptimizerService, OptimizerStep } from "./optimizer.ts"
import { PolicyError, type Learner, type LossCoefficients, type Sample } from "./policy.ts"
import type { Rng } from "./random.ts"
import type { Rollout } from "./rollout.ts"

/** PPO settings with the reference's names and the paper's values (spec §10). */
export const PpoConfig = Schema.Struct({
  num_steps: Schema.Number,
  num_updates: Schema.Number,
  ppo_epoch: Schema.Number,
  mini_batch_size: Schema.Number,
  clip_param: Schema.Number,
  value_loss_coef: Schema.Number,
  entropy_coef: Schema.Number,
  /** The reference configures entropy_coef but its entropy term is zero; true adds the real bonus. */
  entropy_bonus: Schema.Boolean,
  gamma: Schema.Number,
  gae_lambda: Schema.Number,
  /** The reference runs with false: a truncated episode is not a GAE boundary. */
  use_proper_time_limits: Schema.Boolean,
  thought_prob_coef: Schema.Number,
  temperature: Schema.Number,
  save_every: Schema.Number
})
export type PpoConfig = typeof PpoConfig.Type

/** Ratios above this switch the surrogate to its clipped term only (the reference's guard). */
const RATIO_GUARD = 10

export interface PpoLossStats {
  readonly actionLoss: number
  readonly valueLoss: number
  readonly entropy: number
  readonly clipFraction: number
  readonly approxKl: number
  readonly guarded: boolean
}

/**
 * The reference's loss on one mini-batch, as derivatives with respect to what the policy
 * computes: clipped surrogate with the ratio guard, clipped value loss × value_loss_coef,
 * and −entropy_coef × entropy only when `entropy_bonus` is on.
 */
export const ppoLoss = (
  config: PpoConfig,
  batch: { readonly oldLogProbs: ReadonlyArray<number>; readonly oldValues: ReadonlyArray<number>; readonly advantages: ReadonlyArray<number>; readonly returns: ReadonlyArray<number> },
  logProbs: ReadonlyArray<number>,
  values: ReadonlyArray<number>,
  entropies: ReadonlyArray<number>
): { readonly coefficients: LossCoefficients; readonly stats: PpoLossStats } => {
  const n = logProbs.length
  const c = config.clip_param
  const ratios = logProbs.map((lp, i) => Math.exp(lp - batch.oldLogProbs[i]))
  const guarded = ratios.some((r) => r > RATIO_GUARD)
  let actionLoss = 0
  let valueLoss = 0
  let clipped = 0
  const dLogProb = ratios.map((r, i) => {
    const a = batch.advantages[i]
    const inRange = r >= 1 - c && r <= 1 + c
    if (!inRange) clipped++
    const surr1 = r * a
    const surr2 = Math.min(Math.max(r, 1 - c), 1 + c) * a
    if (guarded) {
      actionLoss -= surr2 / n
      return inRange ? (-a * r) / n : 0
    }
    if (surr1 <= surr2) {
      actionLoss -= surr1 / n
      return (-a * r) / n
    }
    actionLoss -= surr2 / n
    return inRange ? (-a * r) / n : 0
  })
  const dValue = values.map((v, i) => {
    const R = batch.returns[i]
    const old = batch.oldValues[i]
    const delta = Math.min(Math.max(v - old, -c), c)
    const vc = old + delta
    const plain = (v - R) ** 2
    const clippedLoss = (vc - R) ** 2
    valueLoss += (0.5 * Math.max(plain, clippedLoss)) / n
    const scale = config.value_loss_coef / n
    if (plain >= clippedLoss) return scale * (v - R)
    return Math.abs(v - old) < c ? scale * (vc - R) : 0
  })
  const dEntropy = entropies.map(() => (config.entropy_bonus ? -config.entropy_coef / n : 0))
  const entropy = entropies.reduce((s, e) => s + e, 0) / Math.max(1, n)
  const approxKl = logProbs.reduce((s, lp, i) => s + (batch.oldLogProbs[i] - lp), 0) / Math.max(1, n)
  return {
    coefficients: { logProb: dLogProb, value: dValue, entropy: dEntropy },
    stats: { actionLoss, valueLoss, entropy, clipFraction: clipped / Math.max(1, n), approxKl, guarded }
  }
}

export interface PpoUpdateStats {
  readonly actionLoss: number
  readonly valueLoss: number
  readonly entropy: number
  readonly clipFraction: number
  readonly approxKl: number
  readonly optimizerSteps: ReadonlyArray<OptimizerStep>
}

const mean = (xs: ReadonlyArray<number>) => (xs.length === 0 ? 0 : xs.reduce((s, x) => s + x, 0) / xs.length)

/** GAE over the rollout, then `ppo_epoch` passes of shuffled mini-batches (spec §10). */
export const ppoUpdate = (config: PpoConfig, rollout: Rollout, learner: Learner, optimizer: OptimizerService, rng: Rng) =>
  Effect.gen(function* () {
    const raw: number[] = []
    const returns: number[] = []
    for (const { start, end, nextValue } of rollout.segments) {
      const slice = <A>(xs: ReadonlyArray<A>) => xs.slice(start, end)
      const g = gae(slice(rollout.rewards), slice(rollout.values), slice(rollout.masks), nextValue, config.gamma, config.gae_lambda)
      raw.push(...g.advantages)
      returns.push(...g.returns)
    }
    const advantages = normalise(raw)
    const stats: PpoLossStats[] = []
    const steps: OptimizerStep[] = []
    const parameters = learner.parameters()
    const n = rollout.samples.length
    for (let epoch = 0; epoch < config.ppo_epoch; epoch++) {
      const order = Array.from({ length: n }, (_, i) => i)
      for (let i = n - 1; i > 0; i--) {
        const j = rng.randint(0, i)
        ;[order[i], order[j]] = [order[j], order[i]]
      }
      for (let start = 0; start < n; start += config.mini_batch_size) {
        const idx = order.slice(start, start + config.mini_batch_size)
        const batch = {
          oldLogProbs: idx.map((i) => rollout.logProbs[i]),
          oldValues: idx.map((i) => rollout.values[i]),
          advantages: idx.map((i) => advantages[i]),
          returns: idx.map((i) => returns[i])
        }
        let lossStats: PpoLossStats | undefined
        const { gradients } = yield* learner.gradients(
          idx.map((i) => rollout.samples[i] as Sample),
          { thoughtWeight: config.thought_prob_coef, temperature: config.temperature },
          (ev) => {
            const loss = ppoLoss(config, batch, ev.logProbs, ev.values, ev.entropies)
            lossStats = loss.stats
            return loss.coefficients
          }
        )
        if (lossStats === undefined) return yield* new PolicyError({ message: "the learner never asked for loss coefficients" })
        stats.push(lossStats)
        const step = optimizer.accumulate(parameters, gradients)
        if (step !== undefined) {
          learner.commit()
          steps.push(step)
        }
      }
    }
    const last = optimizer.flush(parameters)
    if (last !== undefined) {
      learner.commit()
      steps.push(last)
    }
    return {
      actionLoss: mean(stats.map((s) => s.actionLoss)),
      valueLoss: mean(stats.map((s) => s.valueLoss)),
      entropy: mean(stats.map((s) => s.entropy)),
      clipFraction: mean(stats.map((s) => s.clipFraction)),
      approxKl: mean(stats.map((s) => s.approxKl)),
      optimizerSteps: steps
    } satisfies PpoUpdateStats
  })
