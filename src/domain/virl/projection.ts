import { pyMod } from "./geo.ts"

/** A packed RGB image. */
export interface RgbImage {
  readonly width: number
  readonly height: number
  readonly rgb: Uint8Array
}

/** OpenCV's bicubic kernel (A = −0.75), the one `cv2.remap(..., INTER_CUBIC)` samples with. */
const cubicWeights = (t: number, out: Float64Array, offset: number): void => {
  const A = -0.75
  const x0 = t + 1
  const x1 = t
  const x2 = 1 - t
  out[offset] = ((A * x0 - 5 * A) * x0 + 8 * A) * x0 - 4 * A
  out[offset + 1] = ((A + 2) * x1 - (A + 3)) * x1 * x1 + 1
  out[offset + 2] = ((A + 2) * x2 - (A + 3)) * x2 * x2 + 1
  out[offset + 3] = 1 - out[offset] - out[offset + 1] - out[offset + 2]
}

/**
 * What a view needs that does not depend on its heading. At pitch 0 a pinhole ray's latitude
 * depends only on its pixel, and its longitude is the heading plus a per-column offset, so the
 * remap for any heading is this one shifted in longitude (spec §5).
 */
export interface ViewGeometry {
  readonly width: number
  readonly height: number
  readonly panoWidth: number
  readonly panoHeight: number
  /** atan((u − cx) / f) per column, radians. */
  readonly columnLongitude: Float64Array
  /** Byte offsets of the 4 source rows (wrapped) of each pixel's window. */
  readonly rowOffsets: Int32Array
  /** The 4 vertical weights per pixel. */
  readonly rowWeights: Float64Array
  /** Per pixel, the first of its 4 source rows (unwrapped), for the separable path. */
  readonly firstRow: Int32Array
  /** The vertical weights in single precision, for the separable path (half the memory traffic). */
  readonly rowWeights32: Float32Array
  /** The span of source rows all windows read, and whether it needs no vertical wrap. */
  readonly rowMin: number
  readonly rowMax: number
  readonly separable: boolean
}

const geometries = new Map<string, ViewGeometry>()
/** The horizontally filtered rows of the separable path, reused between views. */
let scratch = new Float32Array(0)

/** The pinhole's focal length in pixels. */
const focalLength = (width: number, fovDeg: number): number => (0.5 * width) / Math.tan(((0.5 * fovDeg) / 180.0) * Math.PI)

/** The (fractional) panorama row that view pixel (u, v) samples: its ray's latitude. */
const sourceRow = (u: number, v: number, width: number, height: number, f: number, panoHeight: number): number => {
  const x = (u - (width - 1) / 2.0) / f
  const y = (v - (height - 1) / 2.0) / f
  const lat = Math.asin(y / Math.sqrt(x * x + y * y + 1))
  return (lat / Math.PI + 0.5) * (panoHeight - 1)
}

const spans = new Map<string, { readonly first: number; readonly last: number } | undefined>()

/**
 * The panorama rows (inclusive) that a view of this size and field of view reads at any heading
 * — `viewGeometry`'s rowMin..rowMax without its tables — or undefined when its windows wrap
 * vertically (then every row may be read). A decoder may skip the others.
 */
export const sourceRows = (
  width: number,
  height: number,
  fovDeg: number,
  panoHeight: number
): { readonly first: number; readonly last: number } | undefined => {
  const key = `${width}x${height}@${fovDeg}:${panoHeight}`
  if (spans.has(key)) return spans.get(key)
  const f = focalLength(width, fovDeg)
  let first = Number.MAX_SAFE_INTEGER
  let last = Number.MIN_SAFE_INTEGER
  for (let v = 0; v < height; v++) {
    for (let u = 0; u < width; u++) {
      const y0 = Math.floor(sourceRow(u, v, width, height, f, panoHeight))
      first = Math.min(first, y0 - 1)
      last = Math.max(last, y0 + 2)
    }
  }
  const span = first >= 0 && last < panoHeight ? { first, last } : undefined
  spans.set(key, span)
  return span
}

export const viewGeometry = (width: number, height: number, fovDeg: number, panoWidth: number, panoHeight: number): ViewGeometry => {
  const key = `${width}x${height}@${fovDeg}:${panoWidth}x${panoHeight}`
  const hit = geometries.get(key)
  if (hit !== undefined) return hit
  const f = focalLength(width, fovDeg)
  const cx = (width - 1) / 2.0
  const columnLongitude = new Float64Array(width)
  for (let u = 0; u < width; u++) columnLongitude[u] = Math.atan((u - cx) / f)
  const rowOffsets = new Int32Array(width * height * 4)
  const rowWeights = new Float64Array(width * height * 4)
  const firstRow = new Int32Array(width * height)
  let rowMin = Number.MAX_SAFE_INTEGER
  let rowMax = Number.MIN_SAFE_INTEGER
  for (let v = 0; v < height; v++) {
    for (let u = 0; u < width; u++) {
      const Y = sourceRow(u, v, width, height, f, panoHeight)
      const y0 = Math.floor(Y)
      const p = v * width + u
      for (let i = 0; i < 4; i++) rowOffsets[p * 4 + i] = pyMod(y0 - 1 + i, panoHeight) * panoWidth * 3
      cubicWeights(Y - y0, rowWeights, p * 4)
      firstRow[p] = y0 - 1
      rowMin = Math.min(rowMin, y0 - 1)
      rowMax = Math.max(rowMax, y0 + 2)
    }
  }
  const separable = rowMin >= 0 && rowMax < panoHeight
  const rowWeights32 = Float32Array.from(rowWeights)
  const geometry = { width, height, panoWidth, panoHeight, columnLongitude, rowOffsets, rowWeights, firstRow, rowWeights32, rowMin, rowMax, separable }
  geometries.set(key, geometry)
  return geometry
}

/**
 * Per view column, the byte offsets (within a panorama row) of its 4 source columns, wrapped,
 * and their bicubic weights: the heading's share of the remap.
 */
export const viewColumns = (g: ViewGeometry, request: ViewRequest): { columns: Int32Array; columnWeights: Float64Array } => {
  const W = g.panoWidth
  const width = g.width
  const heading = (pyMod(pyMod(request.heading - 180, 360) + request.northRotation, 360) * Math.PI) / 180
  const columns = new Int32Array(width * 4)
  const columnWeights = new Float64Array(width * 4)
  for (let u = 0; u < width; u++) {
    let lon = heading + g.columnLongitude[u]
    // atan2 returns (−π, π]; the reference maps that range onto [0, W − 1].
    lon = Math.atan2(Math.sin(lon), Math.cos(lon))
    const X = (lon / (2 * Math.PI) + 0.5) * (W - 1)
    const x0 = Math.floor(X)
    for (let j = 0; j < 4; j++) columns[u * 4 + j] = pyMod(x0 - 1 + j, W) * 3
    cubicWeights(X - x0, columnWeights, u * 4)
  }
  return { columns, columnWeights }
}

export interface ViewRequest {
  readonly heading: number
  readonly fov: number
  readonly width: number
  readonly height: number
  /** The panorama's north offset (`rotation` in its metadata), degrees. */
  readonly northRotation: number
}

/**
 * A pinhole view (pitch 0) cut from an equirectangular panorama (written into `into` when it
 * has the right size, e.g. a worker's reused buffer), sampled bicubically with
 * horizontal and vertical wrap-around, as the reference's `get_perspective_from_panorama`.
 */
export const perspectiveView = (pano: RgbImage, request: ViewRequest, into?: Uint8ClampedArray): RgbImage => {
  const { width, height } = request
  const W = pano.width
  const g = viewGeometry(width, height, request.fov, W, pano.height)
  const { columns, columnWeights } = viewColumns(g, request)
  const src = pano.rgb
  // A clamped array rounds and clips on store, in native code.
  const out = into !== undefined && into.length === width * height * 3 ? into : new Uint8ClampedArray(width * height * 3)
  if (g.separable) {
    // At pitch 0 every pixel of a view column reads the same 4 panorama columns, so filter
    // horizontally once per (source row, view column), then 4 vertical taps per pixel.
    const rows = g.rowMax - g.rowMin + 1
    const stride = width * 3
    if (scratch.length < rows * stride) scratch = new Float32Array(rows * stride)
    const h = scratch
    for (let r = 0; r < rows; r++) {
      const base = (g.rowMin + r) * W * 3
      const o = r * stride
      for (let u = 0; u < width; u++) {
        const cw = u * 4
        const a0 = base + columns[cw]
        const a1 = base + columns[cw + 1]
        const a2 = base + columns[cw + 2]
        const a3 = base + columns[cw + 3]
        const w0 = columnWeights[cw]
        const w1 = columnWeights[cw + 1]
        const w2 = columnWeights[cw + 2]
        const w3 = columnWeights[cw + 3]
        const k = o + u * 3
        h[k] = src[a0] * w0 + src[a1] * w1 + src[a2] * w2 + src[a3] * w3
        h[k + 1] = src[a0 + 1] * w0 + src[a1 + 1] * w1 + src[a2 + 1] * w2 + src[a3 + 1] * w3
        h[k + 2] = src[a0 + 2] * w0 + src[a1 + 2] * w1 + src[a2 + 2] * w2 + src[a3 + 2] * w3
      }
    }
    const first = g.firstRow
    const wy = g.rowWeights32
    for (let p = 0, v = 0; v < height; v++) {
      for (let u = 0; u < width; u++, p++) {
        const k = (first[p] - g.rowMin) * stride + u * 3
        const y0 = wy[p * 4]
        const y1 = wy[p * 4 + 1]
        const y2 = wy[p * 4 + 2]
        const y3 = wy[p * 4 + 3]
        const o = p * 3
        out[o] = h[k] * y0 + h[k + stride] * y1 + h[k + 2 * stride] * y2 + h[k + 3 * stride] * y3
        out[o + 1] = h[k + 1] * y0 + h[k + 1 + stride] * y1 + h[k + 1 + 2 * stride] * y2 + h[k + 1 + 3 * stride] * y3
        out[o + 2] = h[k + 2] * y0 + h[k + 2 + stride] * y1 + h[k + 2 + 2 * stride] * y2 + h[k + 2 + 3 * stride] * y3
      }
    }
    return { width, height, rgb: new Uint8Array(out.buffer) }
  }
  const rows = g.rowOffsets
  const rowWeights = g.rowWeights
  for (let p = 0, v = 0; v < height; v++) {
    for (let u = 0; u < width; u++, p++) {
      const cw = u * 4
      const c0 = columns[cw]
      const c1 = columns[cw + 1]
      const c2 = columns[cw + 2]
      const c3 = columns[cw + 3]
      const w0 = columnWeights[cw]
      const w1 = columnWeights[cw + 1]
      const w2 = columnWeights[cw + 2]
      const w3 = columnWeights[cw + 3]
      let r = 0
      let gr = 0
      let b = 0
      for (let i = 0, t = p * 4; i < 4; i++, t++) {
        const base = rows[t]
        const wy = rowWeights[t]
        const a0 = base + c0
        const a1 = base + c1
        const a2 = base + c2
        const a3 = base + c3
        r += (src[a0] * w0 + src[a1] * w1 + src[a2] * w2 + src[a3] * w3) * wy
        gr += (src[a0 + 1] * w0 + src[a1 + 1] * w1 + src[a2 + 1] * w2 + src[a3 + 1] * w3) * wy
        b += (src[a0 + 2] * w0 + src[a1 + 2] * w1 + src[a2 + 2] * w2 + src[a3 + 2] * w3) * wy
      }
      const o = p * 3
      out[o] = r
      out[o + 1] = gr
      out[o + 2] = b
    }
  }
  return { width, height, rgb: new Uint8Array(out.buffer) }
}
