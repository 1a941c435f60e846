/**
 * Correctly rounded sine and cosine for |x| ≤ 2, evaluated in double-double arithmetic.
 *
 * V8's Math.sin/cos may be one ulp away from glibc's (which Python uses), and the reference's
 * bearing formula subtracts two nearly equal products, so that ulp becomes a visible heading
 * difference between two close geocodes. Outside |x| ≤ 2 the built-ins are used.
 */
type DD = readonly [number, number]

const SPLITTER = 134217729 // 2^27 + 1

const twoSum = (a: number, b: number): DD => {
  const s = a + b
  const bb = s - a
  return [s, a - (s - bb) + (b - bb)]
}

const split = (a: number): DD => {
  const t = SPLITTER * a
  const hi = t - (t - a)
  return [hi, a - hi]
}

const twoProd = (a: number, b: number): DD => {
  const p = a * b
  const [ah, al] = split(a)
  const [bh, bl] = split(b)
  return [p, ah * bh - p + ah * bl + al * bh + al * bl]
}

const add = (a: DD, b: DD): DD => {
  const [s, e] = twoSum(a[0], b[0])
  const [hi, lo] = twoSum(s, e + a[1] + b[1])
  return [hi, lo]
}

const mul = (a: DD, b: DD): DD => {
  const [p, e] = twoProd(a[0], b[0])
  return twoSum(p, e + a[0] * b[1] + a[1] * b[0])
}

const divByInt = (a: DD, n: number): DD => {
  const q1 = a[0] / n
  const [p, e] = twoProd(q1, n)
  const remainder = a[0] - p - e + a[1]
  return twoSum(q1, remainder / n)
}

const series = (x: number, first: DD, firstPower: number): number => {
  const x2 = twoProd(x, x)
  let term = first
  let sum = first
  for (let k = firstPower; Math.abs(term[0]) > 1e-40 * Math.abs(sum[0]) + 1e-300; k += 2) {
    term = divByInt(mul(term, x2), -((k + 1) * (k + 2)))
    sum = add(sum, term)
  }
  return sum[0] + sum[1]
}

export const sin = (x: number): number => (Math.abs(x) <= 2 && x !== 0 ? series(x, [x, 0], 1) : Math.sin(x))

export const cos = (x: number): number => (Math.abs(x) <= 2 ? series(x, [1, 0], 0) : Math.cos(x))
