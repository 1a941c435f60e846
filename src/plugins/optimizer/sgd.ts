import { Layer } from "effect"
import { Optimizer, type OptimizerConfig, type OptimizerService, type OptimizerStep } from "../../core/optimizer.ts"
import type { Parameters } from "../../core/parameters.ts"

/**
 * SGD with heavy-ball momentum (β = `beta1`, 0.9 by default) and decoupled weight decay, with the
 * same accumulation, global-norm clipping and linear learning-rate schedule as AdamW — the other
 * side of an optimizer ablation. Its checkpointed state keeps the velocity in `m` (`v` unused).
 */
export const NAME = "sgd-momentum"

export const make = (config: OptimizerConfig): OptimizerService => {
  let step = 0
  let pending = 0
  const sums = new Map<string, Float32Array>()
  let velocity = new Map<string, { m: Float32Array; v: Float32Array }>()

  const learningRate = (s: number): number => config.init_lr + (config.end_lr - config.init_lr) * Math.min(1, s / Math.max(1, config.lr_max_steps))

  const apply = (parameters: Parameters): OptimizerStep | undefined => {
    if (pending === 0) return undefined
    let sq = 0
    for (const g of sums.values()) for (let i = 0; i < g.length; i++) sq += (g[i] /= pending) * g[i]
    const gradNorm = Math.sqrt(sq)
    const scale = config.max_grad_norm > 0 && gradNorm > config.max_grad_norm ? config.max_grad_norm / (gradNorm + 1e-6) : 1
    const lr = learningRate(step)
    step += 1
    for (const [name, g] of sums) {
      const p = parameters.get(name)
      if (p === undefined) throw new Error(`gradient for unknown parameter ${name}`)
      let state = velocity.get(name)
      if (state === undefined) velocity.set(name, state = { m: new Float32Array(p.length), v: new Float32Array(0) })
      const m = state.m
      for (let i = 0; i < p.length; i++) {
        m[i] = config.beta1 * m[i] + g[i] * scale
        p[i] -= lr * (m[i] + config.weight_decay * p[i])
      }
      g.fill(0)
    }
    pending = 0
    return { learningRate: lr, gradNorm, step }
  }

  return {
    config,
    accumulate: (parameters, gradients) => {
      for (const [name, g] of gradients) {
        let sum = sums.get(name)
        if (sum === undefined) sums.set(name, sum = new Float32Array(g.length))
        for (let i = 0; i < g.length; i++) sum[i] += g[i]
      }
      pending += 1
      return pending >= config.grad_accum_steps ? apply(parameters) : undefined
    },
    flush: apply,
    learningRate,
    state: () => ({ step, pending: 0, moments: new Map([...velocity].map(([k, s]) => [k, { m: s.m.slice(), v: new Float32Array(0) }])) }),
    restore: (state) => {
      step = state.step
      pending = 0
      sums.clear()
      velocity = new Map([...state.moments].map(([k, s]) => [k, { m: Float32Array.from(s.m), v: new Float32Array(0) }]))
    }
  }
}

/** SGD with momentum as the run's optimizer. */
export const layer = Layer.succeed(Optimizer, { name: NAME, make })
