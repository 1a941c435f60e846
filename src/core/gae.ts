/**
 * Generalised advantage estimation over a rollout that spans episodes (spec §10): `masks[t]`
 * is 0 where the episode ended at step t, so nothing flows back across it.
 */
export const gae = (
  rewards: ReadonlyArray<number>,
  values: ReadonlyArray<number>,
  masks: ReadonlyArray<number>,
  nextValue: number,
  gamma: number,
  lambda: number
): { readonly advantages: number[]; readonly returns: number[] } => {
  const n = rewards.length
  const advantages = new Array<number>(n)
  let last = 0
  for (let t = n - 1; t >= 0; t--) {
    const next = t === n - 1 ? nextValue : values[t + 1]
    const delta = rewards[t] + gamma * next * masks[t] - values[t]
    last = delta + gamma * lambda * masks[t] * last
    advantages[t] = last
  }
  return { advantages, returns: advantages.map((a, t) => a + values[t]) }
}

export const normalise = (xs: ReadonlyArray<number>, eps = 1e-5): number[] => {
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length
  const std = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / Math.max(1, xs.length - 1))
  return xs.map((x) => (x - mean) / (std + eps))
}
