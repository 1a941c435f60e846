import { Effect, Schema } from "effect"
import { gae, normalise } from "./gae.ts"
import type { OptimizerService, OptimizerStep } from "./optimizer.ts"
import { type Learner, type LossCoefficients, PolicyError, type Sample } from "./policy.ts"
import type { Rng } from "./random.ts"
import type { Rollout } from "./rollout.ts"
import { atLeast, nonNegative, positive, rate } from "./settings-schema.ts"

/** The clipped objective's settings, with the reference's names (its `ppo_config`, spec §10). */
export const PpoSettings = Schema.Struct({
  clip_param: positive,
  ppo_epoch: atLeast(1),
  mini_batch_size: atLeast(1),
  value_loss_coef: nonNegative,
  entropy_coef: nonNegative,
  /** The reference configures entropy_coef but adds a zero entropy term; true adds the real one. */
  entropy_bonus: Schema.Boolean,
  max_grad_norm: nonNegative
})

/** How returns and advantages are computed (the reference's `compute_return_kwargs`). */
export const ReturnSettings = Schema.Struct({
  gamma: rate,
  gae_lambda: rate,
  /** The reference runs with false: a truncated episode is not a GAE boundary. */
  use_proper_time_limits: Schema.Boolean
})

/** How answers are sampled and weighed (the reference's `generation_config`). */
export const GenerationSettings = Schema.Struct({
  temperature: nonNegative,
  /** The weight of the thought parts' log-probability against the action's. */
  thought_prob_coef: rate
})

/** What one PPO run needs: the three sections above and the rollout's length and count. */
export const PpoConfig = Schema.Struct({
  ...PpoSettings.fields,
  ...ReturnSettings.fields,
  ...GenerationSettings.fields,
  num_steps: atLeast(1),
  num_updates: atLeast(0),
  save_every: atLeast(1)
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
 * PPO's loss on one mini-batch, as CleanRL's ppo.py writes it, with the reference's ratio guard
 * (ε = clip_param, A the normalised advantages, R the returns):
 *
 *   ratio    = exp(log π(a|s) − log π_old(a|s))
 *   pg_loss  = −mean( min(ratio · A, clip(ratio, 1 − ε, 1 + ε) · A) )   — only the clipped term when any ratio > 10
 *   V_clip   = V_old + clip(V − V_old, −ε, ε)
 *   v_loss   = ½ · mean( max((V − R)², (V_clip − R)²) )
 *   loss     = pg_loss + value_loss_coef · v_loss − entropy_coef · mean(entropy)   — the last term only with entropy_bonus
 *
 * The learner backpropagates the loss's derivatives with respect to each sample's log-probability,
 * value and entropy through the model; each term's derivative is written next to it.
 */
export const ppoLoss = (
  config: PpoConfig,
  batch: {
    readonly oldLogProbs: ReadonlyArray<number>
    readonly oldValues: ReadonlyArray<number>
    readonly advantages: ReadonlyArray<number>
    readonly returns: ReadonlyArray<number>
  },
  logProbs: ReadonlyArray<number>,
  values: ReadonlyArray<number>,
  entropies: ReadonlyArray<number>
): { readonly coefficients: LossCoefficients; readonly stats: PpoLossStats } => {
  const n = logProbs.length
  const eps = config.clip_param
  const clip = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi)

  // the clipped surrogate
  const ratio = logProbs.map((lp, i) => Math.exp(lp - batch.oldLogProbs[i]))
  const guarded = ratio.some((r) => r > RATIO_GUARD)
  let actionLoss = 0
  let clipped = 0
  const dLogProb = ratio.map((r, i) => {
    const A = batch.advantages[i]
    const unclippedTerm = r * A
    const clippedTerm = clip(r, 1 - eps, 1 + eps) * A
    const inRange = r >= 1 - eps && r <= 1 + eps
    if (!inRange) clipped++
    const takesClipped = guarded || clippedTerm < unclippedTerm
    actionLoss -= (takesClipped ? clippedTerm : unclippedTerm) / n
    // d/d log π of −term/n: the term is r·A (d r / d log π = r) unless it is the clipped one outside its range, where it is flat
    return takesClipped && !inRange ? 0 : (-A * r) / n
  })

  // the clipped value loss
  let valueLoss = 0
  const dValue = values.map((V, i) => {
    const R = batch.returns[i]
    const old = batch.oldValues[i]
    const vClip = old + clip(V - old, -eps, eps)
    const plain = (V - R) ** 2
    const clippedLoss = (vClip - R) ** 2
    valueLoss += (0.5 * Math.max(plain, clippedLoss)) / n
    // d/dV of value_loss_coef · ½ · max(...)/n: through the plain term, or the clipped one while V − V_old is inside (−ε, ε)
    const scale = config.value_loss_coef / n
    if (plain >= clippedLoss) return scale * (V - R)
    return Math.abs(V - old) < eps ? scale * (vClip - R) : 0
  })

  // the entropy bonus (the reference configures entropy_coef but adds a zero term)
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
  Effect.gen(function*() {
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
