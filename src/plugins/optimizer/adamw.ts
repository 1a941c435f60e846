import { Layer } from "effect"
import { copyMoments, Optimizer, type OptimizerConfig, type OptimizerService, type OptimizerState, type OptimizerStep } from "../../core/optimizer.ts"
import type { Parameters } from "../../core/parameters.ts"

/**
 * AdamW over plain Float32Arrays, so any policy whose learner exposes its parameters can use
 * it: gradients averaged over `grad_accum_steps` micro-batches, clipped to `max_grad_norm` by
 * global norm, learning rate linear from `init_lr` to `end_lr` over `lr_max_steps` steps.
 */
export const make = (config: OptimizerConfig): OptimizerService => {
  let step = 0
  let pending = 0
  const sums = new Map<string, Float32Array>()
  let moments = new Map<string, { m: Float32Array; v: Float32Array }>()

  const learningRate = (s: number): number => {
    const t = Math.min(1, s / Math.max(1, config.lr_max_steps))
    return config.init_lr + (config.end_lr - config.init_lr) * t
  }

  const apply = (parameters: Parameters): OptimizerStep | undefined => {
    if (pending === 0) return undefined
    let sq = 0
    for (const g of sums.values()) {
      // dividing by 1 changes nothing: skipped
      if (pending !== 1) { for (let i = 0; i < g.length; i++) g[i] /= pending }
      for (let i = 0; i < g.length; i++) sq += g[i] * g[i]
    }
    const gradNorm = Math.sqrt(sq)
    const scale = config.max_grad_norm > 0 && gradNorm > config.max_grad_norm ? config.max_grad_norm / (gradNorm + 1e-6) : 1
    step += 1
    const lr = learningRate(step - 1)
    const b1 = config.beta1
    const b2 = config.beta2
    const c1 = 1 - b1 ** step
    const c2 = 1 - b2 ** step
    // the same operations in the same order as written out per element; constants read once
    const ob1 = 1 - b1
    const ob2 = 1 - b2
    const eps = config.eps
    const wd = config.weight_decay
    for (const [name, g] of sums) {
      const p = parameters.get(name)
      if (p === undefined) throw new Error(`gradient for unknown parameter ${name}`)
      let mo = moments.get(name)
      if (mo === undefined) {
        mo = { m: new Float32Array(p.length), v: new Float32Array(p.length) }
        moments.set(name, mo)
      }
      const { m, v } = mo
      for (let i = 0; i < p.length; i++) {
        const gi = g[i] * scale
        // rounded as the Float32Array stores them, then read back
        const mi = Math.fround(b1 * m[i] + ob1 * gi)
        const vi = Math.fround(b2 * v[i] + ob2 * gi * gi)
        m[i] = mi
        v[i] = vi
        p[i] -= lr * ((mi / c1) / (Math.sqrt(vi / c2) + eps) + wd * p[i])
      }
    }
    // the sums start again from the next micro-batch's gradients (accumulate overwrites them)
    pending = 0
    return { learningRate: lr, gradNorm, step }
  }

  return {
    config,
    learningRate,
    accumulate: (parameters, gradients) => {
      // the first micro-batch of an update is copied (0 + g = g; a −0 stays −0, which no update tells from 0)
      if (pending === 0) { for (const [name, sum] of sums) if (!gradients.has(name)) sum.fill(0) }
      for (const [name, g] of gradients) {
        let sum = sums.get(name)
        if (sum === undefined) {
          sum = new Float32Array(g.length)
          sums.set(name, sum)
        }
        if (pending === 0) sum.set(g)
        else for (let i = 0; i < g.length; i++) sum[i] += g[i]
      }
      pending += 1
      return pending >= config.grad_accum_steps ? apply(parameters) : undefined
    },
    flush: apply,
    state: (): OptimizerState => ({ step, pending: 0, moments: copyMoments(moments) }),
    restore: (state) => {
      step = state.step
      pending = 0
      sums.clear()
      moments = copyMoments(state.moments)
    }
  }
}

export const NAME = "adamw"

/** AdamW as the run's optimizer (the default). */
export const layer = Layer.succeed(Optimizer, { name: NAME, make })
