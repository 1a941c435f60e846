import type { OutputDistribution } from "./policy.ts"

/**
 * Forward KL(p ‖ q) of two output distributions over the same input, part by part (the parts are
 * independent given the input, so the KL of the whole output is the sum over parts). RL's Razor
 * (Shenfeld et al., 2025) measures forgetting by this with p the base model and q the fine-tuned one.
 */
export const partKl = (p: OutputDistribution, q: OutputDistribution): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const [part, lp] of Object.entries(p.parts)) {
    const lq = q.parts[part]
    if (lq === undefined || lq.length !== lp.length) throw new RangeError(`part ${part}: the two distributions have different options`)
    let kl = 0
    for (let k = 0; k < lp.length; k++) {
      const pk = Math.exp(lp[k])
      if (pk > 0) kl += pk * (lp[k] - lq[k])
    }
    out[part] = Math.max(0, kl)
  }
  return out
}

export interface KlSummary {
  /** Mean over inputs of the whole output's KL, in nats. */
  readonly total: number
  /** Mean over inputs, part by part. */
  readonly parts: Readonly<Record<string, number>>
  readonly inputs: number
}

export const meanKl = (ps: ReadonlyArray<OutputDistribution>, qs: ReadonlyArray<OutputDistribution>): KlSummary => {
  if (ps.length !== qs.length) throw new RangeError(`KL over ${ps.length} and ${qs.length} inputs`)
  const parts: Record<string, number> = {}
  ps.forEach((p, i) => {
    for (const [k, v] of Object.entries(partKl(p, qs[i]))) parts[k] = (parts[k] ?? 0) + v / Math.max(1, ps.length)
  })
  return { total: Object.values(parts).reduce((s, v) => s + v, 0), parts, inputs: ps.length }
}
