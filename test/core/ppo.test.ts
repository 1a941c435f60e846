import { describe, expect, it } from "vitest"
import { type PpoConfig, ppoLoss } from "../../src/core/ppo.ts"

const config: PpoConfig = {
  num_steps: 4,
  num_updates: 1,
  ppo_epoch: 1,
  mini_batch_size: 4,
  clip_param: 0.1,
  value_loss_coef: 0.5,
  entropy_coef: 0.01,
  entropy_bonus: false,
  max_grad_norm: 1,
  gamma: 0.9,
  gae_lambda: 0.95,
  use_proper_time_limits: false,
  thought_prob_coef: 0.5,
  temperature: 1,
  save_every: 1
}

/** The loss written out directly, to differentiate numerically. */
const loss = (c: PpoConfig, b: Parameters<typeof ppoLoss>[1], lp: number[], v: number[], h: number[]) => {
  const n = lp.length
  const r = lp.map((x, i) => Math.exp(x - b.oldLogProbs[i]))
  const guarded = r.some((x) => x > 10)
  const clip = (x: number) => Math.min(Math.max(x, 1 - c.clip_param), 1 + c.clip_param)
  const action = -r.reduce((s, ri, i) => s + (guarded ? clip(ri) * b.advantages[i] : Math.min(ri * b.advantages[i], clip(ri) * b.advantages[i])), 0) / n
  const value = (0.5 *
    v.reduce((s, vi, i) => {
      const vc = b.oldValues[i] + Math.min(Math.max(vi - b.oldValues[i], -c.clip_param), c.clip_param)
      return s + Math.max((vi - b.returns[i]) ** 2, (vc - b.returns[i]) ** 2)
    }, 0)) /
    n
  const entropy = h.reduce((s, x) => s + x, 0) / n
  return action + c.value_loss_coef * value - (c.entropy_bonus ? c.entropy_coef * entropy : 0)
}

const batch = { oldLogProbs: [-1, -0.5, -2, -0.1], oldValues: [0.2, -0.3, 1.0, 0.0], advantages: [1.5, -0.7, 0.3, -1.2], returns: [1.0, -1.0, 0.5, 0.4] }

const numeric = (f: (x: number[]) => number, x: number[], i: number) => {
  const e = 1e-6
  const up = [...x]
  const down = [...x]
  up[i] += e
  down[i] -= e
  return (f(up) - f(down)) / (2 * e)
}

describe("ppoLoss", () => {
  it("gives the derivatives of the clipped surrogate and the clipped value loss", () => {
    const lp = [-0.95, -0.62, -2.0, -0.3]
    const v = [0.25, -0.1, 0.7, 0.05]
    const h = [0.5, 0.4, 0.3, 0.2]
    const { coefficients } = ppoLoss(config, batch, lp, v, h)
    for (let i = 0; i < 4; i++) {
      expect(coefficients.logProb[i]).toBeCloseTo(numeric((x) => loss(config, batch, x, v, h), lp, i), 6)
      expect(coefficients.value[i]).toBeCloseTo(numeric((x) => loss(config, batch, lp, x, h), v, i), 6)
    }
    expect(coefficients.entropy).toEqual([0, 0, 0, 0])
  })

  it("has no gradient where the ratio is clipped against the advantage", () => {
    // ratio e^0.5 ≈ 1.65 > 1.1 with a positive advantage: the clipped term is the minimum
    const { coefficients, stats } = ppoLoss(config, batch, [-0.5, -0.5, -2, -0.1], batch.oldValues, [0, 0, 0, 0])
    expect(coefficients.logProb[0]).toBe(0)
    expect(stats.clipFraction).toBeCloseTo(0.25, 12)
  })

  it("uses only the clipped term when any ratio exceeds 10 (the reference's guard)", () => {
    const lp = [-1 + Math.log(20), -0.55, -2, -0.1]
    const v = batch.oldValues
    const { coefficients, stats } = ppoLoss(config, batch, lp, v, [0, 0, 0, 0])
    expect(stats.guarded).toBe(true)
    for (let i = 0; i < 4; i++) expect(coefficients.logProb[i]).toBeCloseTo(numeric((x) => loss(config, batch, x, v, [0, 0, 0, 0]), lp, i), 5)
  })

  it("adds the entropy bonus only when asked", () => {
    const on = ppoLoss({ ...config, entropy_bonus: true }, batch, batch.oldLogProbs, batch.oldValues, [1, 1, 1, 1])
    expect(on.coefficients.entropy).toEqual([-0.0025, -0.0025, -0.0025, -0.0025])
  })
})
