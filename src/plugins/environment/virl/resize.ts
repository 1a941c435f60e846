import type { RgbImage } from "./projection.ts"

/** Pillow's bicubic kernel (a = −0.5). */
const bicubic = (x: number): number => {
  const a = -0.5
  if (x < 0) x = -x
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a
  return 0
}

interface Taps {
  readonly start: Int32Array
  readonly count: Int32Array
  readonly weights: Float64Array
  readonly maxTaps: number
}

const tapCache = new Map<string, Taps>()

/** Pillow's `precompute_coeffs`: support widened by the scale when shrinking (antialiasing). */
const taps = (inSize: number, outSize: number): Taps => {
  const key = `${inSize}>${outSize}`
  const hit = tapCache.get(key)
  if (hit !== undefined) return hit
  const scale = inSize / outSize
  const filterScale = Math.max(scale, 1)
  const support = 2 * filterScale
  const maxTaps = Math.ceil(support) * 2 + 1
  const start = new Int32Array(outSize)
  const count = new Int32Array(outSize)
  const weights = new Float64Array(outSize * maxTaps)
  for (let x = 0; x < outSize; x++) {
    const center = (x + 0.5) * scale
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0)
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin
    let total = 0
    for (let i = 0; i < xmax; i++) {
      const w = bicubic((i + xmin - center + 0.5) / filterScale)
      weights[x * maxTaps + i] = w
      total += w
    }
    for (let i = 0; i < xmax; i++) if (total !== 0) weights[x * maxTaps + i] /= total
    start[x] = xmin
    count[x] = xmax
  }
  const result = { start, count, weights, maxTaps }
  tapCache.set(key, result)
  return result
}

/**
 * `Image.resize((w, h))` with Pillow's default bicubic filter: a horizontal pass into an 8-bit
 * intermediate, then a vertical pass, each with antialiasing support when shrinking.
 */
export const resizeBicubic = (image: RgbImage, width: number, height: number): RgbImage => {
  if (image.width === width && image.height === height) return image
  let current = image
  if (image.width !== width) {
    const t = taps(image.width, width)
    // A clamped array rounds and clips on store, in native code.
    const out = new Uint8ClampedArray(width * image.height * 3)
    const src = image.rgb
    for (let y = 0; y < image.height; y++) {
      const row = y * image.width * 3
      for (let x = 0; x < width; x++) {
        let r = 0
        let g = 0
        let b = 0
        const s0 = t.start[x]
        const wBase = x * t.maxTaps
        const n = t.count[x]
        if (n === 4 || n === 5) {
          // the common windows when enlarging, unrolled (same order of additions)
          const s = row + s0 * 3
          const w0 = t.weights[wBase]
          const w1 = t.weights[wBase + 1]
          const w2 = t.weights[wBase + 2]
          const w3 = t.weights[wBase + 3]
          const w4 = n === 5 ? t.weights[wBase + 4] : 0
          const s4 = n === 5 ? s + 12 : s + 9
          const o = (y * width + x) * 3
          out[o] = src[s] * w0 + src[s + 3] * w1 + src[s + 6] * w2 + src[s + 9] * w3 + src[s4] * w4
          out[o + 1] = src[s + 1] * w0 + src[s + 4] * w1 + src[s + 7] * w2 + src[s + 10] * w3 + src[s4 + 1] * w4
          out[o + 2] = src[s + 2] * w0 + src[s + 5] * w1 + src[s + 8] * w2 + src[s + 11] * w3 + src[s4 + 2] * w4
          continue
        }
        for (let i = 0; i < n; i++) {
          const w = t.weights[wBase + i]
          const s = row + (s0 + i) * 3
          r += src[s] * w
          g += src[s + 1] * w
          b += src[s + 2] * w
        }
        const o = (y * width + x) * 3
        out[o] = r
        out[o + 1] = g
        out[o + 2] = b
      }
    }
    current = { width, height: image.height, rgb: new Uint8Array(out.buffer) }
  }
  if (current.height !== height) {
    const t = taps(current.height, height)
    const out = new Uint8ClampedArray(width * height * 3)
    const src = current.rgb
    const stride = width * 3
    const acc = new Float64Array(stride)
    for (let y = 0; y < height; y++) {
      const wBase = y * t.maxTaps
      const o = y * stride
      const n = t.count[y]
      const r0 = t.start[y] * stride
      if (n === 4 || n === 5) {
        // the common windows when enlarging, unrolled: one pass over the row, no accumulator
        const w0 = t.weights[wBase]
        const w1 = t.weights[wBase + 1]
        const w2 = t.weights[wBase + 2]
        const w3 = t.weights[wBase + 3]
        const w4 = n === 5 ? t.weights[wBase + 4] : 0
        const r1 = r0 + stride
        const r2 = r1 + stride
        const r3 = r2 + stride
        const r4 = n === 5 ? r3 + stride : r3
        for (let c = 0; c < stride; c++) {
          out[o + c] = src[r0 + c] * w0 + src[r1 + c] * w1 + src[r2 + c] * w2 + src[r3 + c] * w3 + src[r4 + c] * w4
        }
        continue
      }
      acc.fill(0)
      for (let i = 0; i < n; i++) {
        const w = t.weights[wBase + i]
        const row = r0 + i * stride
        for (let c = 0; c < stride; c++) acc[c] += src[row + c] * w
      }
      out.set(acc, o)
    }
    current = { width, height, rgb: new Uint8Array(out.buffer) }
  }
  return current
}
