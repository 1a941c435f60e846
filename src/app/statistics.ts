/**
 * Student's t and the normal distribution, and Holm's step-down correction: what the report's
 * intervals and tests need, written out so that nothing outside the repository decides them.
 */

/** The natural log of Γ(x), x > 0 (Lanczos, g = 7, 9 terms: ~15 digits). */
const logGamma = (x: number): number => {
  const c = [
    0.99999999999980993,
    676.5203681218851,
    -1259.1392167224028,
    771.32342877765313,
    -176.61502916214059,
    12.507343278686905,
    -0.13857109526572012,
    9.9843695780195716e-6,
    1.5056327351493116e-7
  ]
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x)
  const z = x - 1
  let a = c[0]!
  const t = z + 7.5
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i)
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a)
}

/** The continued fraction of the incomplete beta function (modified Lentz). */
const betaFraction = (x: number, a: number, b: number): number => {
  const tiny = 1e-300
  let c = 1
  let d = 1 - ((a + b) * x) / (a + 1)
  if (Math.abs(d) < tiny) d = tiny
  d = 1 / d
  let h = d
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2))
    d = 1 + aa * d
    if (Math.abs(d) < tiny) d = tiny
    c = 1 + aa / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    h *= d * c
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1))
    d = 1 + aa * d
    if (Math.abs(d) < tiny) d = tiny
    c = 1 + aa / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    const step = d * c
    h *= step
    if (Math.abs(step - 1) < 1e-15) break
  }
  return h
}

/** The regularised incomplete beta function I_x(a, b). */
export const incompleteBeta = (x: number, a: number, b: number): number => {
  if (x <= 0) return 0
  if (x >= 1) return 1
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x))
  return x < (a + 1) / (a + b + 2) ? (front * betaFraction(x, a, b)) / a : 1 - (front * betaFraction(1 - x, b, a)) / b
}

/** P(Z ≤ z) for the standard normal (erfc by its Chebyshev fit, relative error below 1.2e-7). */
export const normalCdf = (z: number): number => {
  const x = Math.abs(z) / Math.SQRT2
  const t = 1 / (1 + 0.5 * x)
  const erfc = t *
    Math.exp(
      -x * x - 1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    )
  return z >= 0 ? 1 - erfc / 2 : erfc / 2
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom (Infinity: the normal). */
export const studentCdf = (t: number, df: number): number => {
  if (!Number.isFinite(df)) return normalCdf(t)
  if (Number.isNaN(t)) return Number.NaN
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5)
  return t >= 0 ? 1 - tail : tail
}

/** The q-quantile of Student's t (by bisection on the distribution function). */
export const studentQuantile = (q: number, df: number): number => {
  if (q === 0.5) return 0
  let lo = -1e3
  let hi = 1e3
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2
    if (studentCdf(mid, df) < q) lo = mid
    else hi = mid
  }
  return (lo + hi) / 2
}

/** The two-sided p-value of `estimate` = 0 given its standard error and degrees of freedom. */
export const twoSidedP = (estimate: number, se: number, df: number): number => {
  if (!Number.isFinite(estimate) || !(se >= 0)) return Number.NaN
  if (se === 0) return estimate === 0 ? 1 : 0
  return Math.min(1, 2 * (1 - studentCdf(Math.abs(estimate) / se, df)))
}

/**
 * Holm's step-down adjustment of p-values (family-wise error): the k-th smallest of m is
 * multiplied by m − k + 1, and adjusted values never decrease in that order.
 */
export const holm = (ps: ReadonlyArray<number>): number[] => {
  const m = ps.length
  const order = ps.map((p, i) => [p, i] as const).sort((x, y) => x[0] - y[0])
  const out = new Array<number>(m).fill(Number.NaN)
  let running = 0
  order.forEach(([p, i], k) => {
    running = Math.max(running, Math.min(1, (m - k) * p))
    out[i] = running
  })
  return out
}

/** The mean and the 95 % t-interval of the mean of `xs` ([mean, mean] for one value). */
export const meanInterval = (xs: ReadonlyArray<number>): readonly [number, number] => {
  const n = xs.length
  const mean = xs.reduce((s, x) => s + x, 0) / Math.max(1, n)
  if (n < 2) return [mean, mean]
  const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1))
  const half = studentQuantile(0.975, n - 1) * sd / Math.sqrt(n)
  return [mean - half, mean + half]
}
