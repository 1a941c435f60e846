import type { RgbImage } from "./projection.ts"

/** Pillow's bicubic kernel (a = −0.5). */
const bicubic = (x: number): number => {
  const a = -0.5
  if (x < 0) x = -x
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a
  return 0
}

export interface Taps {
  readonly start: Int32Array
  readonly count: Int32Array
  /** Pillow's fixed-point coefficients: the normalised weights × 2^22, rounded away from 0. */
  readonly weights: Int32Array
  readonly maxTaps: number
}

/** Pillow's 8-bit resampling works in fixed point with this many fractional bits. */
const PRECISION_BITS = 32 - 8 - 2
const HALF = 1 << (PRECISION_BITS - 1)
const CLIP_HIGH = (1 << PRECISION_BITS) * 256

const clip8 = (v: number): number => (v >= CLIP_HIGH ? 255 : v <= 0 ? 0 : v >> PRECISION_BITS)

const tapCache = new Map<string, Taps>()

/**
 * Pillow's `precompute_coeffs` (support widened by the scale when shrinking: antialiasing),
 * then `normalize_coeffs_8bpc`.
 */
export const taps = (inSize: number, outSize: number): Taps => {
  const key = `${inSize}>${outSize}`
  const hit = tapCache.get(key)
  if (hit !== undefined) return hit
  const scale = inSize / outSize
  const filterScale = Math.max(scale, 1)
  const support = 2 * filterScale
  const maxTaps = Math.ceil(support) * 2 + 1
  const start = new Int32Array(outSize)
  const count = new Int32Array(outSize)
  const weights = new Int32Array(outSize * maxTaps)
  const k = new Float64Array(maxTaps)
  for (let x = 0; x < outSize; x++) {
    const center = (x + 0.5) * scale
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0)
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin
    let total = 0
    for (let i = 0; i < xmax; i++) {
      k[i] = bicubic((i + xmin - center + 0.5) / filterScale)
      total += k[i]
    }
    const fixed = Array.from({ length: xmax }, (_, i) => {
      const w = total !== 0 ? k[i] / total : k[i]
      return Math.trunc(w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS))
    })
    // taps whose fixed-point weight is 0 add nothing: drop them at both ends (a 5-sample window
    // when enlarging always has one)
    let first = 0
    let last = xmax
    while (first < last && fixed[first] === 0) first++
    while (last > first && fixed[last - 1] === 0) last--
    for (let i = first; i < last; i++) weights[x * maxTaps + i - first] = fixed[i]
    start[x] = xmin + first
    count[x] = last - first
  }
  const result = { start, count, weights, maxTaps }
  tapCache.set(key, result)
  return result
}

/**
 * `Image.resize((w, h))` with Pillow's default bicubic filter, in Pillow's fixed point: a
 * horizontal pass into an 8-bit intermediate, then a vertical pass, each with antialiasing
 * support when shrinking.
 */
/** Where the last pass writes: rows of `stride` bytes in `rgb` from byte `offset` on. */
export interface ResizeTarget {
  readonly rgb: Uint8Array
  readonly stride: number
  readonly offset: number
}

/** The horizontal pass's output when a vertical pass follows, reused between calls. */
let intermediate = new Uint8Array(0)

export const resizeBicubic = (image: RgbImage, width: number, height: number, target?: ResizeTarget): RgbImage => {
  if (image.width === width && image.height === height) {
    if (target !== undefined) {
      for (let y = 0; y < height; y++) target.rgb.set(image.rgb.subarray(y * width * 3, (y + 1) * width * 3), target.offset + y * target.stride)
    }
    return image
  }
  let current = image
  if (image.width !== width) {
    const t = taps(image.width, width)
    const last = image.height === height
    const size = width * image.height * 3
    if (!last && intermediate.length < size) intermediate = new Uint8Array(size)
    const out = last ? new Uint8Array(size) : intermediate.subarray(0, size)
    const src = image.rgb
    const kk = t.weights
    for (let y = 0; y < image.height; y++) {
      const row = y * image.width * 3
      for (let x = 0; x < width; x++) {
        let r = HALF
        let g = HALF
        let b = HALF
        const wBase = x * t.maxTaps
        const n = t.count[x]
        let s = row + t.start[x] * 3
        const o = (y * width + x) * 3
        for (let i = 0; i < n; i++, s += 3) {
          const w = kk[wBase + i]
          r = (r + src[s] * w) | 0
          g = (g + src[s + 1] * w) | 0
          b = (b + src[s + 2] * w) | 0
        }
        out[o] = clip8(r)
        out[o + 1] = clip8(g)
        out[o + 2] = clip8(b)
      }
    }
    current = { width, height: image.height, rgb: out }
    if (last && target !== undefined) return resizeBicubic(current, width, height, target)
  }
  if (current.height !== height) {
    const t = taps(current.height, height)
    const src = current.rgb
    const stride = width * 3
    // into the target (its rows `outStride` apart from `base`), or a fresh image
    const out = target?.rgb ?? new Uint8Array(width * height * 3)
    const outStride = target?.stride ?? stride
    const base = target?.offset ?? 0
    const kk = t.weights
    for (let y = 0; y < height; y++) {
      const wBase = y * t.maxTaps
      const o = base + y * outStride
      const n = t.count[y]
      const r0 = t.start[y] * stride
      if (n === 4) {
        // the window of enlarging (zero-weight taps dropped), unrolled
        const w0 = kk[wBase]
        const w1 = kk[wBase + 1]
        const w2 = kk[wBase + 2]
        const w3 = kk[wBase + 3]
        const r1 = r0 + stride
        const r2 = r1 + stride
        const r3 = r2 + stride
        for (let c = 0; c < stride; c++) {
          out[o + c] = clip8((HALF + src[r0 + c] * w0 + src[r1 + c] * w1 + src[r2 + c] * w2 + src[r3 + c] * w3) | 0)
        }
        continue
      }
      for (let c = 0; c < stride; c++) {
        let acc = HALF
        for (let i = 0, row = r0 + c; i < n; i++, row += stride) acc = (acc + src[row] * kk[wBase + i]) | 0
        out[o + c] = clip8(acc)
      }
    }
    current = target === undefined ? { width, height, rgb: out } : { width, height, rgb: new Uint8Array(0) }
  }
  return current
}
