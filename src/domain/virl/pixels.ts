import * as fs from "node:fs"
import { type RgbImage, viewColumns, type ViewGeometry, viewGeometry, type ViewRequest } from "./projection.ts"
import { resizeBicubic, type ResizeTarget, type Taps, taps } from "./resize.ts"
import { textSetting } from "../../core/settings.ts"

/**
 * The street-view kernels compiled to WebAssembly SIMD (native/kernels/pixels.ts, built by
 * `npm run build:kernels` into pixels.wasm beside this file): the same arithmetic as the
 * JavaScript kernels of projection.ts and resize.ts in the same order, so the same bytes (tested),
 * and faster (docs/measurements.md). `VIRL_KERNELS=js`
 * turns them off (for comparison); where WebAssembly SIMD is missing the JavaScript kernels run.
 */
interface Kernels {
  readonly memory: WebAssembly.Memory
  resizeHorizontal(
    src: number,
    inWidth: number,
    height: number,
    dst: number,
    outWidth: number,
    start: number,
    count: number,
    weights: number,
    maxTaps: number
  ): void
  resizeVertical(
    src: number,
    rowBytes: number,
    dst: number,
    dstStride: number,
    outHeight: number,
    start: number,
    count: number,
    weights: number,
    maxTaps: number
  ): void
  viewHorizontal(pano: number, panoWidth: number, rowMin: number, rows: number, width: number, columns: number, columnWeights: number, dst: number): void
  viewVertical(h: number, width: number, height: number, rowMin: number, firstRow: number, rowWeights: number, dst: number): void
}

/** Every buffer is followed by this much slack: vectors read and write 16 bytes at a time. */
const SLACK = 64
const PAGE = 65536
const align = (n: number): number => Math.ceil(n / 16) * 16

let kernels: Kernels | null | undefined

const load = (): Kernels | null => {
  if (kernels !== undefined) return kernels
  kernels = null
  if (textSetting("VIRL_KERNELS") === "js") return kernels
  try {
    const module = new WebAssembly.Module(fs.readFileSync(new URL("./pixels.wasm", import.meta.url)))
    kernels = new WebAssembly.Instance(module, {}).exports as unknown as Kernels
  } catch (e) {
    process.emitWarning(
      `virl: the WebAssembly SIMD street-view kernels did not load (${(e as Error).message}); the JavaScript ones run instead (same pixels, slower)`
    )
  }
  return kernels
}

/** Whether the WebAssembly kernels serve this thread. */
export const simdKernels = (): boolean => load() !== null

/**
 * The module's memory: tables that stay (a view geometry's rows and weights, resize taps, the
 * last panorama's rows) from the bottom up, each call's scratch above them.
 */
class Arena {
  private top = 0
  private readonly tables = new Map<unknown, number>()
  private panoKey: string | undefined
  private panoAt = -1
  private panoBytes = 0

  constructor(private readonly k: Kernels) {}

  private reserve(end: number): void {
    const have = this.k.memory.buffer.byteLength
    if (end > have) this.k.memory.grow(Math.ceil((end - have) / PAGE))
  }

  bytes(): Uint8Array {
    return new Uint8Array(this.k.memory.buffer)
  }

  /** A table kept for the thread's life, written once. */
  table(key: unknown, data: ArrayBufferView): number {
    const hit = this.tables.get(key)
    if (hit !== undefined) return hit
    const at = this.top
    this.top = align(at + data.byteLength + SLACK)
    this.reserve(this.top)
    this.bytes().set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at)
    this.tables.set(key, at)
    // the panorama slot, if any, sat where scratch starts now: copy it again next time
    this.panoKey = undefined
    this.panoAt = -1
    return at
  }

  /** Rows `first`..`first + rows − 1` of a panorama, copied unless they are the last ones copied. */
  panorama(pano: RgbImage, first: number, rows: number, key: string | undefined): number {
    const bytes = rows * pano.width * 3
    const fullKey = key === undefined ? undefined : `${key}:${first}:${rows}`
    if (fullKey !== undefined && fullKey === this.panoKey && this.panoAt === this.top) return this.panoAt
    this.reserve(this.top + align(bytes + SLACK))
    this.bytes().set(pano.rgb.subarray(first * pano.width * 3, first * pano.width * 3 + bytes), this.top)
    this.panoKey = fullKey
    this.panoAt = this.top
    this.panoBytes = align(bytes + SLACK)
    return this.top
  }

  /** Scratch buffers of these sizes above the tables (and the panorama rows): their offsets. */
  scratch(sizes: ReadonlyArray<number>): number[] {
    let at = this.top + (this.panoAt === this.top ? this.panoBytes : 0)
    const offsets = sizes.map((size) => {
      const here = at
      at = align(at + size + SLACK)
      return here
    })
    this.reserve(at)
    return offsets
  }
}

let arena: Arena | undefined

const tapTables = (a: Arena, t: Taps): { start: number; count: number; weights: number; maxTaps: number } => ({
  start: a.table(t.start, t.start),
  count: a.table(t.count, t.count),
  weights: a.table(t.weights, t.weights),
  maxTaps: t.maxTaps
})

const geometryTables = (a: Arena, g: ViewGeometry): { firstRow: number; rowWeights: number } => ({
  firstRow: a.table(g.firstRow, g.firstRow),
  rowWeights: a.table(g.rowWeights32, g.rowWeights32)
})

/**
 * A perspective view resized to `resolution`² (Pillow's bicubic), written into `target` or
 * returned: `perspectiveView` then `resizeBicubic`, on the WebAssembly kernels. `undefined` when
 * they cannot serve (not loaded, or a view that wraps vertically): the caller runs the JavaScript
 * kernels. `panoKey` names the panorama so a thread copies its rows once for several views.
 */
export const simdTile = (
  pano: RgbImage,
  request: ViewRequest,
  resolution: number,
  target?: ResizeTarget,
  panoKey?: string
): RgbImage | undefined => {
  const k = load()
  if (k === null) return undefined
  const g = viewGeometry(request.width, request.height, request.fov, pano.width, pano.height)
  if (!g.separable) return undefined
  const a = (arena ??= new Arena(k))
  const { width, height } = request
  const { columns, columnWeights } = viewColumns(g, request)
  const geometry = geometryTables(a, g)
  const horizontal = width === resolution ? undefined : tapTables(a, taps(width, resolution))
  const vertical = height === resolution ? undefined : tapTables(a, taps(height, resolution))
  const rows = g.rowMax - g.rowMin + 1
  const panoAt = a.panorama(pano, g.rowMin, rows, panoKey)
  const [columnsAt, weightsAt, hAt, viewAt, midAt, outAt] = a.scratch([
    columns.byteLength,
    columnWeights.byteLength,
    rows * width * 3 * 4,
    width * height * 3,
    resolution * height * 3,
    resolution * resolution * 3
  ])
  const mem = a.bytes()
  mem.set(new Uint8Array(columns.buffer), columnsAt)
  mem.set(new Uint8Array(columnWeights.buffer), weightsAt)
  // the panorama's rows start at row 0 of the copy
  k.viewHorizontal(panoAt, pano.width, 0, rows, width, columnsAt, weightsAt, hAt)
  k.viewVertical(hAt, width, height, g.rowMin, geometry.firstRow, geometry.rowWeights, viewAt)
  let current = viewAt
  let currentWidth = width
  if (horizontal !== undefined) {
    k.resizeHorizontal(current, width, height, midAt, resolution, horizontal.start, horizontal.count, horizontal.weights, horizontal.maxTaps)
    current = midAt
    currentWidth = resolution
  }
  if (vertical !== undefined) {
    k.resizeVertical(current, currentWidth * 3, outAt, resolution * 3, resolution, vertical.start, vertical.count, vertical.weights, vertical.maxTaps)
    current = outAt
  }
  const tile = a.bytes().subarray(current, current + resolution * resolution * 3)
  if (target === undefined) return { width: resolution, height: resolution, rgb: tile.slice() }
  // a same-size resize copies the rows into the target
  resizeBicubic({ width: resolution, height: resolution, rgb: tile }, resolution, resolution, target)
  return { width: resolution, height: resolution, rgb: new Uint8Array(0) }
}
