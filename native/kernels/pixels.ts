// The street-view kernels in WebAssembly SIMD (AssemblyScript; `npm run build:kernels` compiles
// this file to src/domain/virl/pixels.wasm). Each one is the JavaScript kernel of
// projection.ts / resize.ts with the same arithmetic in the same order, so the bytes they write
// are the same (tested): only more of it per instruction.
//
// Memory is the caller's: every argument that ends in `Ptr` is a byte offset into the module's
// memory, laid out by the JavaScript side (pixels.ts), with at least 16 bytes of slack after each
// buffer (a vector reads and writes up to 16 bytes at a time).

/** Pillow's fixed point for 8-bit images: 22 fractional bits. */
const PRECISION_BITS: i32 = 22
const HALF: i32 = 1 << (PRECISION_BITS - 1)

/** 4 bytes at `ptr` (R, G, B and the next byte) as four 32-bit lanes. */
// @ts-ignore: decorator
@inline function rgbx(ptr: usize): v128 {
  return i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(ptr)))
}

/** Lanes 2 and 3 moved to 0 and 1 (the B of an RGB pixel, and what follows). */
// @ts-ignore: decorator
@inline function high(v: v128): v128 {
  return i32x4.shuffle(v, v, 2, 3, 2, 3)
}

/** ((x0·w0 + x1·w1) + x2·w2) + x3·w3 in double precision: the JavaScript kernels' order of operations. */
// @ts-ignore: decorator
@inline function dot4(x0: v128, x1: v128, x2: v128, x3: v128, w0: v128, w1: v128, w2: v128, w3: v128): v128 {
  return f64x2.add(f64x2.add(f64x2.add(f64x2.mul(x0, w0), f64x2.mul(x1, w1)), f64x2.mul(x2, w2)), f64x2.mul(x3, w3))
}

/** Pillow's clip8 on four lanes: v >> 22, clamped to 0..255, in the low byte of each lane. */
// @ts-ignore: decorator
@inline function clip8x4(v: v128): v128 {
  const shifted = i32x4.shr_s(v, PRECISION_BITS)
  return i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(shifted, shifted), i16x8.narrow_i32x4_s(shifted, shifted))
}

/**
 * Pillow's horizontal pass: `height` rows of `inWidth` RGB pixels into rows of `outWidth`, each
 * output pixel the fixed-point sum of `count[x]` pixels from `start[x]` on.
 */
export function resizeHorizontal(
  srcPtr: usize, inWidth: i32, height: i32, dstPtr: usize, outWidth: i32,
  startPtr: usize, countPtr: usize, weightPtr: usize, maxTaps: i32
): void {
  const half = i32x4.splat(HALF)
  for (let y = 0; y < height; y++) {
    const row = srcPtr + <usize>(y * inWidth * 3)
    let out = dstPtr + <usize>(y * outWidth * 3)
    for (let x = 0; x < outWidth; x++) {
      let acc = half
      const n = load<i32>(countPtr + (<usize>x << 2))
      let s = row + <usize>(load<i32>(startPtr + (<usize>x << 2)) * 3)
      let w = weightPtr + (<usize>(x * maxTaps) << 2)
      if (n == 4) {
        // enlarging: 4 taps, unrolled
        acc = sum4(acc, rgbx(s), rgbx(s + 3), rgbx(s + 6), rgbx(s + 9), v128.load32_splat(w), v128.load32_splat(w, 4), v128.load32_splat(w, 8), v128.load32_splat(w, 12))
      } else {
        for (let i = 0; i < n; i++) {
          acc = i32x4.add(acc, i32x4.mul(rgbx(s), v128.load32_splat(w)))
          s += 3
          w += 4
        }
      }
      // 4 bytes written: the 4th is the next pixel's first, written after
      v128.store32_lane(out, clip8x4(acc), 0)
      out += 3
    }
  }
}

/**
 * Pillow's vertical pass: `outHeight` rows of `rowBytes` bytes, each the fixed-point sum of
 * `count[y]` source rows from `start[y]` on; output rows `dstStride` bytes apart.
 */
export function resizeVertical(
  srcPtr: usize, rowBytes: i32, dstPtr: usize, dstStride: i32, outHeight: i32,
  startPtr: usize, countPtr: usize, weightPtr: usize, maxTaps: i32
): void {
  const half = i32x4.splat(HALF)
  for (let y = 0; y < outHeight; y++) {
    const n = load<i32>(countPtr + (<usize>y << 2))
    const first = srcPtr + <usize>(load<i32>(startPtr + (<usize>y << 2)) * rowBytes)
    const weights = weightPtr + (<usize>(y * maxTaps) << 2)
    const out = dstPtr + <usize>(y * dstStride)
    // 16 bytes at a time; the last block may run past the row (slack or the next row, written after)
    if (n == 4) {
      // enlarging: 4 taps (zero weights dropped), their weights held in registers
      const w0 = v128.load32_splat(weights)
      const w1 = v128.load32_splat(weights, 4)
      const w2 = v128.load32_splat(weights, 8)
      const w3 = v128.load32_splat(weights, 12)
      const step = <usize>rowBytes
      for (let c = 0; c < rowBytes; c += 16) {
        const s = first + <usize>c
        const b0 = v128.load(s)
        const b1 = v128.load(s + step)
        const b2 = v128.load(s + 2 * step)
        const b3 = v128.load(s + 3 * step)
        const l0 = i16x8.extend_low_i8x16_u(b0)
        const l1 = i16x8.extend_low_i8x16_u(b1)
        const l2 = i16x8.extend_low_i8x16_u(b2)
        const l3 = i16x8.extend_low_i8x16_u(b3)
        const h0 = i16x8.extend_high_i8x16_u(b0)
        const h1 = i16x8.extend_high_i8x16_u(b1)
        const h2 = i16x8.extend_high_i8x16_u(b2)
        const h3 = i16x8.extend_high_i8x16_u(b3)
        const a0 = sum4(half, i32x4.extend_low_i16x8_u(l0), i32x4.extend_low_i16x8_u(l1), i32x4.extend_low_i16x8_u(l2), i32x4.extend_low_i16x8_u(l3), w0, w1, w2, w3)
        const a1 = sum4(half, i32x4.extend_high_i16x8_u(l0), i32x4.extend_high_i16x8_u(l1), i32x4.extend_high_i16x8_u(l2), i32x4.extend_high_i16x8_u(l3), w0, w1, w2, w3)
        const a2 = sum4(half, i32x4.extend_low_i16x8_u(h0), i32x4.extend_low_i16x8_u(h1), i32x4.extend_low_i16x8_u(h2), i32x4.extend_low_i16x8_u(h3), w0, w1, w2, w3)
        const a3 = sum4(half, i32x4.extend_high_i16x8_u(h0), i32x4.extend_high_i16x8_u(h1), i32x4.extend_high_i16x8_u(h2), i32x4.extend_high_i16x8_u(h3), w0, w1, w2, w3)
        store16(out + <usize>c, a0, a1, a2, a3)
      }
      continue
    }
    for (let c = 0; c < rowBytes; c += 16) {
      let a0 = half
      let a1 = half
      let a2 = half
      let a3 = half
      let s = first + <usize>c
      for (let i = 0; i < n; i++) {
        const w = v128.load32_splat(weights + (<usize>i << 2))
        const bytes = v128.load(s)
        const lo = i16x8.extend_low_i8x16_u(bytes)
        const hi = i16x8.extend_high_i8x16_u(bytes)
        a0 = i32x4.add(a0, i32x4.mul(i32x4.extend_low_i16x8_u(lo), w))
        a1 = i32x4.add(a1, i32x4.mul(i32x4.extend_high_i16x8_u(lo), w))
        a2 = i32x4.add(a2, i32x4.mul(i32x4.extend_low_i16x8_u(hi), w))
        a3 = i32x4.add(a3, i32x4.mul(i32x4.extend_high_i16x8_u(hi), w))
        s += <usize>rowBytes
      }
      store16(out + <usize>c, a0, a1, a2, a3)
    }
  }
}

/** Four fixed-point taps on four lanes, added to `acc` in order (wrapping, as Pillow's int32 sums). */
// @ts-ignore: decorator
@inline function sum4(acc: v128, p0: v128, p1: v128, p2: v128, p3: v128, w0: v128, w1: v128, w2: v128, w3: v128): v128 {
  return i32x4.add(i32x4.add(i32x4.add(i32x4.add(acc, i32x4.mul(p0, w0)), i32x4.mul(p1, w1)), i32x4.mul(p2, w2)), i32x4.mul(p3, w3))
}

/** 16 sums of fixed point to 16 clipped bytes at `ptr`. */
// @ts-ignore: decorator
@inline function store16(ptr: usize, a0: v128, a1: v128, a2: v128, a3: v128): void {
  const lo = i16x8.narrow_i32x4_s(i32x4.shr_s(a0, PRECISION_BITS), i32x4.shr_s(a1, PRECISION_BITS))
  const hi = i16x8.narrow_i32x4_s(i32x4.shr_s(a2, PRECISION_BITS), i32x4.shr_s(a3, PRECISION_BITS))
  v128.store(ptr, i8x16.narrow_i16x8_u(lo, hi))
}

/**
 * The perspective view's horizontal pass (pitch 0, no vertical wrap): for `rows` panorama rows
 * from `rowMin` on and each of `width` view columns, the 4-tap bicubic sum over the column's
 * source pixels (byte offsets `columns`, weights `columnWeights` in double precision), summed in
 * double precision tap by tap and stored in single precision, three channels per pixel.
 */
export function viewHorizontal(
  panoPtr: usize, panoWidth: i32, rowMin: i32, rows: i32, width: i32,
  columnPtr: usize, columnWeightPtr: usize, dstPtr: usize
): void {
  const stride = width * 3
  for (let r = 0; r < rows; r++) {
    const base = panoPtr + <usize>((rowMin + r) * panoWidth * 3)
    let out = dstPtr + (<usize>(r * stride) << 2)
    for (let u = 0; u < width; u++) {
      const cols = columnPtr + (<usize>u << 4)
      const ws = columnWeightPtr + (<usize>u << 5)
      const c0 = load<i32>(cols)
      const w0 = v128.load64_splat(ws)
      const w1 = v128.load64_splat(ws, 8)
      const w2 = v128.load64_splat(ws, 16)
      const w3 = v128.load64_splat(ws, 24)
      const p0 = rgbx(base + <usize>c0)
      const p1 = rgbx(base + <usize>load<i32>(cols, 4))
      const p2 = rgbx(base + <usize>load<i32>(cols, 8))
      const p3 = rgbx(base + <usize>load<i32>(cols, 12))
      // (R, G) and (B, next) in double precision
      const rg = dot4(f64x2.convert_low_i32x4_u(p0), f64x2.convert_low_i32x4_u(p1), f64x2.convert_low_i32x4_u(p2), f64x2.convert_low_i32x4_u(p3), w0, w1, w2, w3)
      const bx = dot4(f64x2.convert_low_i32x4_u(high(p0)), f64x2.convert_low_i32x4_u(high(p1)), f64x2.convert_low_i32x4_u(high(p2)), f64x2.convert_low_i32x4_u(high(p3)), w0, w1, w2, w3)
      const lo = f32x4.demote_f64x2_zero(rg)
      const hi = f32x4.demote_f64x2_zero(bx)
      // 16 bytes written: the 4th float is the next pixel's first, written after
      v128.store(out, i32x4.shuffle(lo, hi, 0, 1, 4, 5))
      out += 12
    }
  }
}

/**
 * The perspective view's vertical pass: each pixel the 4-tap sum over the horizontally filtered
 * rows from `firstRow[p] − rowMin` on (single-precision values and weights, summed in double
 * precision), rounded half to even and clamped to 0..255 as a Uint8ClampedArray store does.
 */
export function viewVertical(
  hPtr: usize, width: i32, height: i32, rowMin: i32,
  firstRowPtr: usize, rowWeightPtr: usize, dstPtr: usize
): void {
  const stride = <usize>(width * 3) << 2
  const magic = f64x2.splat(6755399441055744.0)
  let out = dstPtr
  let p: usize = 0
  for (let v = 0; v < height; v++) {
    for (let u = 0; u < width; u++, p++) {
      const k = hPtr + <usize>(load<i32>(firstRowPtr + (p << 2)) - rowMin) * stride + (<usize>(u * 3) << 2)
      const ws = rowWeightPtr + (p << 4)
      const h0 = v128.load(k)
      const h1 = v128.load(k + stride)
      const h2 = v128.load(k + 2 * stride)
      const h3 = v128.load(k + 3 * stride)
      const wf = v128.load(ws)
      const w01 = f64x2.promote_low_f32x4(wf)
      const w23 = f64x2.promote_low_f32x4(i32x4.shuffle(wf, wf, 2, 3, 2, 3))
      const w0 = i64x2.shuffle(w01, w01, 0, 0)
      const w1 = i64x2.shuffle(w01, w01, 1, 1)
      const w2 = i64x2.shuffle(w23, w23, 0, 0)
      const w3 = i64x2.shuffle(w23, w23, 1, 1)
      // (R, G) and (B, next) in double precision
      const rg = dot4(f64x2.promote_low_f32x4(h0), f64x2.promote_low_f32x4(h1), f64x2.promote_low_f32x4(h2), f64x2.promote_low_f32x4(h3), w0, w1, w2, w3)
      const bx = dot4(f64x2.promote_low_f32x4(high(h0)), f64x2.promote_low_f32x4(high(h1)), f64x2.promote_low_f32x4(high(h2)), f64x2.promote_low_f32x4(high(h3)), w0, w1, w2, w3)
      // + 1.5 × 2^52 rounds half to even into the low word; the saturating narrows clamp to 0..255
      const rgWords = f64x2.add(rg, magic)
      const bxWords = f64x2.add(bx, magic)
      const words = i32x4.shuffle(rgWords, bxWords, 0, 2, 4, 6)
      const halves = i16x8.narrow_i32x4_s(words, words)
      v128.store32_lane(out, i8x16.narrow_i16x8_u(halves, halves), 0)
      out += 3
    }
  }
}
