/**
 * What the policies share when they turn logits into a choice: the log-partition of a row of
 * logits at a temperature, the most likely entry, and a draw by inverting the distribution at a
 * uniform number (the tfjs-vl policy over its listed answers, the generative one over tokens).
 */

/** The divisor (the temperature, at least 1e-6) and log Σ exp(logits[offset + k] / t) over k < n. */
export const logPartition = (logits: ArrayLike<number>, offset: number, n: number, temperature: number): { readonly t: number; readonly logZ: number } => {
  const t = Math.max(temperature, 1e-6)
  let max = -Infinity
  for (let k = 0; k < n; k++) max = Math.max(max, logits[offset + k]! / t)
  let sum = 0
  for (let k = 0; k < n; k++) sum += Math.exp(logits[offset + k]! / t - max)
  return { t, logZ: max + Math.log(sum) }
}

/** The index of the largest log-probability (the first of equals). */
export const mostLikely = (logProbs: ArrayLike<number>): number => {
  let best = 0
  for (let k = 1; k < logProbs.length; k++) if (logProbs[k]! > logProbs[best]!) best = k
  return best
}

/** The index where the cumulative probability first passes `u` (uniform in [0, 1)); the last one if rounding leaves it short. */
export const drawn = (logProbs: ArrayLike<number>, u: number): number => {
  let r = u
  for (let k = 0; k < logProbs.length - 1; k++) {
    r -= Math.exp(logProbs[k]!)
    if (r < 0) return k
  }
  return logProbs.length - 1
}
