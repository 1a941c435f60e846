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
interface ViewGeometry {
  readonly width: number
  readonly height: number
  readonly panoWidth: number
  readonly panoHeight: number
  /** atan((u − cx) / f) per column, radians. */
  readonly columnLongitude: Float64Array
  /** First source row (already wrapped) of the 4-tap window, per pixel. */
  readonly rowIndex: Int32Array
  /** The 4 vertical weights per pixel. */
  readonly rowWeights: Float64Array
}

const geometries = new Map<string, ViewGeometry>()

const viewGeometry = (width: number, height: number, fovDeg: number, panoWidth: number, panoHeight: number): ViewGeometry => {
  const key = `${width}x${height}@${fovDeg}:${panoWidth}x${panoHeight}`
  const hit = geometries.get(key)
  if (hit !== undefined) return hit
  const f = (0.5 * width) / Math.tan(((0.5 * fovDeg) / 180.0) * Math.PI)
  const cx = (width - 1) / 2.0
  const cy = (height - 1) / 2.0
  const columnLongitude = new Float64Array(width)
  for (let u = 0; u < width; u++) columnLongitude[u] = Math.atan((u - cx) / f)
  const rowIndex = new Int32Array(width * height)
  const rowWeights = new Float64Array(width * height * 4)
  for (let v = 0; v < height; v++) {
    const y = (v - cy) / f
    for (let u = 0; u < width; u++) {
      const x = (u - cx) / f
      const lat = Math.asin(y / Math.sqrt(x * x + y * y + 1))
      const Y = (lat / Math.PI + 0.5) * (panoHeight - 1)
      const y0 = Math.floor(Y)
      const p = v * width + u
      rowIndex[p] = y0 - 1
      cubicWeights(Y - y0, rowWeights, p * 4)
    }
  }
  const geometry = { width, height, panoWidth, panoHeight, columnLongitude, rowIndex, rowWeights }
  geometries.set(key, geometry)
  return geometry
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
 * A pinhole view (pitch 0) cut from an equirectangular panorama, sampled bicubically with
 * horizontal and vertical wrap-around, as the reference's `get_perspective_from_panorama`.
 */
export const perspectiveView = (pano: RgbImage, request: ViewRequest): RgbImage => {
  const { width, height } = request
  const W = pano.width
  const H = pano.height
  const g = viewGeometry(width, height, request.fov, W, H)
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
  const src = pano.rgb
  const out = new Uint8Array(width * height * 3)
  const rowStride = W * 3
  const rowOffsets = new Int32Array(4)
  for (let v = 0; v < height; v++) {
    for (let u = 0; u < width; u++) {
      const p = v * width + u
      const r0 = g.rowIndex[p]
      for (let i = 0; i < 4; i++) rowOffsets[i] = pyMod(r0 + i, H) * rowStride
      let r = 0
      let gr = 0
      let b = 0
      const cw = u * 4
      for (let i = 0; i < 4; i++) {
        const wy = g.rowWeights[p * 4 + i]
        const base = rowOffsets[i]
        let hr = 0
        let hg = 0
        let hb = 0
        for (let j = 0; j < 4; j++) {
          const s = base + columns[cw + j]
          const wx = columnWeights[cw + j]
          hr += src[s] * wx
          hg += src[s + 1] * wx
          hb += src[s + 2] * wx
        }
        r += hr * wy
        gr += hg * wy
        b += hb * wy
      }
      const o = p * 3
      out[o] = r < 0 ? 0 : r > 255 ? 255 : Math.round(r)
      out[o + 1] = gr < 0 ? 0 : gr > 255 ? 255 : Math.round(gr)
      out[o + 2] = b < 0 ? 0 : b > 255 ? 255 : Math.round(b)
    }
  }
  return { width, height, rgb: out }
}
