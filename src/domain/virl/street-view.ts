import { Effect, type Scope } from "effect"
import * as path from "node:path"
import { DatasetError, type Panorama, type RouteDataset, type RowSpan } from "../../core/dataset.ts"
import { viewHeadings } from "./geo.ts"
import type { ViewPose } from "./episode.ts"
import { perspectiveView, type RgbImage, sourceRows } from "./projection.ts"
import { simdTile } from "./pixels.ts"
import { resizeBicubic } from "./resize.ts"
import { sharedTilePool, type TilePool } from "./tile-pool.ts"

export const SEPARATOR = 5
/** Memory the caches may hold: tiles, and finished grids. */
const TILE_CACHE_BYTES = 256 * 2 ** 20
const GRID_CACHE_BYTES = 160 * 2 ** 20

export interface StreetViewConfig {
  readonly resolution: number
  readonly view_size: number
  readonly fov: number
  readonly mapping_radius: number
}

/** The top-left corner of tile i's cell, (i % 2, i // 2), in a grid with 5-pixel separators. */
export const cellOrigin = (i: number, resolution: number): { readonly left: number; readonly top: number } => ({
  left: (i % 2) * (resolution + SEPARATOR),
  top: Math.floor(i / 2) * (resolution + SEPARATOR)
})

/** Places four tiles at cells (i % 2, i // 2) of a black canvas with 5-pixel separators. */
export const composeGrid = (tiles: ReadonlyArray<RgbImage>, resolution: number): RgbImage => {
  const side = 2 * resolution + SEPARATOR
  const rgb = new Uint8Array(side * side * 3)
  tiles.forEach((tile, i) => {
    const { left, top } = cellOrigin(i, resolution)
    const rowBytes = resolution * 3
    for (let y = 0; y < resolution; y++) {
      rgb.set(tile.rgb.subarray(y * rowBytes, (y + 1) * rowBytes), ((top + y) * side + left) * 3)
    }
  })
  return { width: side, height: side, rgb }
}

/**
 * Finished grids of every renderer of this process, by dataset folder, view settings, panorama
 * and heading, the least recently used dropped past the budget: evaluations of the same routes
 * (every point of every arm of a run) render each view once. A grid is a function of its
 * panorama file, which a process never sees change.
 */
const grids = new Map<string, RgbImage>()
let gridBytes = 0

const keepGrid = (key: string, grid: RgbImage): void => {
  if (grids.has(key)) return
  grids.set(key, grid)
  gridBytes += grid.rgb.byteLength
  while (gridBytes > GRID_CACHE_BYTES && grids.size > 1) {
    const oldest = grids.keys().next().value as string
    gridBytes -= grids.get(oldest)!.rgb.byteLength
    grids.delete(oldest)
  }
}

/** One name per decoded panorama (a panorama decoded again, or another dataset's, is another). */
const panoramaKeys = new WeakMap<Panorama, string>()
let decodes = 0
const panoramaKey = (pano: Panorama): string => {
  let key = panoramaKeys.get(pano)
  if (key === undefined) {
    key = `${process.pid}:${decodes++}`
    panoramaKeys.set(pano, key)
  }
  return key
}

/**
 * The visual observation (spec §5): four perspective views at h−135, h−45, h+45, h+135, each
 * resized to `resolution`, in a 2×2 grid. Finished grids (and, on this thread, tiles) are
 * cached by panorama, heading and size: retries and revisits of a point cost nothing.
 */
export class StreetViewRenderer {
  private readonly tiles = new Map<string, RgbImage>()
  /** Whether finished grids are kept (in the process's cache: see `grids`). */
  private readonly keepGrids: boolean
  /** What a grid's key starts with: the dataset and the view settings. */
  private readonly gridPrefix: string
  /** Renders under way, so that a prefetch and a render of one pose share the work. */
  private readonly inflight = new Map<string, Effect.Effect<RgbImage, DatasetError>>()
  /** The panorama rows the views read: the decoder skips the rest (at fov 90, half of them). */
  private readonly span: RowSpan

  constructor(
    private readonly dataset: RouteDataset,
    private readonly config: StreetViewConfig,
    private readonly tileCacheSize = Math.max(8, Math.floor(TILE_CACHE_BYTES / (config.resolution * config.resolution * 3))),
    /** Worker threads for the tiles; undefined renders on this thread. */
    private readonly pool: TilePool | undefined = sharedTilePool(),
    /** Where prefetches run: closing it interrupts them (default: the process). */
    private readonly scope?: Scope.Scope
  ) {
    const { view_size, fov } = config
    this.span = { key: `view ${view_size}@${fov}`, rows: (_width, height) => sourceRows(view_size, view_size, fov, height) }
    this.keepGrids = this.tileCacheSize > 0
    this.gridPrefix = `${path.resolve(dataset.root)}|${view_size}@${fov}|`
  }

  panoramaAt(pose: ViewPose): Effect.Effect<string, DatasetError> {
    const match = this.dataset.exactPanorama(pose.geocode) ?? this.dataset.nearestPanorama(pose.geocode, this.config.mapping_radius)
    return match === undefined
      ? Effect.fail(
        new DatasetError({
          path: this.dataset.root,
          field: "gps_pano_mapping.pkl",
          message: `no panorama within ${this.config.mapping_radius} m of (${pose.geocode[0]}, ${pose.geocode[1]})`
        })
      )
      : Effect.succeed(match.panoId)
  }

  /** One view of a panorama, on this thread (cached); `source` lets the four views of a grid share one decode. */
  tile(
    panoId: string,
    heading: number,
    source: Effect.Effect<Panorama, DatasetError> = this.dataset.panorama(panoId, this.span)
  ): Effect.Effect<RgbImage, DatasetError> {
    const { resolution, view_size, fov } = this.config
    const key = `${panoId}@${heading}:${resolution}`
    const hit = this.tiles.get(key)
    if (hit !== undefined) return Effect.succeed(hit)
    return source.pipe(
      Effect.map((pano) => {
        const request = { heading, fov, width: view_size, height: view_size, northRotation: pano.rotation }
        const tile = simdTile(pano, request, resolution, undefined, panoramaKey(pano)) ?? resizeBicubic(perspectiveView(pano, request), resolution, resolution)
        this.tiles.set(key, tile)
        if (this.tiles.size > this.tileCacheSize) this.tiles.delete(this.tiles.keys().next().value as string)
        return tile
      })
    )
  }

  render(pose: ViewPose): Effect.Effect<RgbImage, DatasetError> {
    return this.panoramaAt(pose).pipe(
      Effect.flatMap((panoId) => {
        const key = `${this.gridPrefix}${panoId}@${pose.heading}:${this.config.resolution}`
        const hit = this.keepGrids ? grids.get(key) : undefined
        if (hit !== undefined) {
          // the most recently used last: the cache drops the grids unused longest
          grids.delete(key)
          grids.set(key, hit)
          return Effect.succeed(hit)
        }
        const running = this.inflight.get(key)
        if (running !== undefined) return running
        const build = Effect.cached(this.dataset.panorama(panoId, this.span)).pipe(
          Effect.flatMap((source) => this.grid(panoId, pose.heading, source)),
          Effect.tap((grid) => Effect.sync(() => this.keepGrids && keepGrid(key, grid))),
          Effect.ensuring(Effect.sync(() => this.inflight.delete(key)))
        )
        return Effect.cached(build).pipe(
          Effect.tap((memo) => Effect.sync(() => this.inflight.set(key, memo))),
          Effect.flatten
        )
      })
    )
  }

  /**
   * The four views in their 2×2 cells: on the pool, each worker writes its view straight into a
   * grid in shared memory; otherwise tiles (cached) are composed here.
   */
  private grid(panoId: string, heading: number, source: Effect.Effect<Panorama, DatasetError>): Effect.Effect<RgbImage, DatasetError> {
    const { resolution, view_size, fov } = this.config
    const headings = viewHeadings(heading, fov)
    const pool = this.pool
    return source.pipe(
      Effect.flatMap((pano) => {
        if (pool === undefined || !(pano.rgb.buffer instanceof SharedArrayBuffer)) {
          return Effect.forEach(headings, (h) => this.tile(panoId, h, source), { concurrency: 4 }).pipe(Effect.map((tiles) => composeGrid(tiles, resolution)))
        }
        const side = 2 * resolution + SEPARATOR
        const grid = new Uint8Array(pool.sharedBuffer(side * side * 3))
        const image = { width: pano.width, height: pano.height, rgb: pano.rgb }
        return Effect.forEach(
          headings,
          (h, i) =>
            Effect.tryPromise({
              try: () =>
                pool.render({
                  pano: image,
                  panoKey: panoramaKey(pano),
                  rotation: pano.rotation,
                  heading: h,
                  fov,
                  viewSize: view_size,
                  resolution,
                  target: { grid, gridWidth: side, ...cellOrigin(i, resolution) }
                }),
              // a tile worker that died is the view's failure, named, not a defect
              catch: (e) =>
                new DatasetError({
                  path: this.dataset.root,
                  field: `panorama ${panoId}`,
                  message: `the view at heading ${h} failed on a tile worker: ${String(e)}`
                })
            }),
          { concurrency: 4 }
        ).pipe(Effect.as({ width: side, height: side, rgb: grid }))
      })
    )
  }

  /**
   * Starts work in the background while the policy thinks: the grid of the first pose (the next
   * rail point) and the panorama decode of the ones after it. A later `render` of them waits
   * for this work instead of redoing it.
   */
  prefetch(poses: ReadonlyArray<ViewPose>): Effect.Effect<void> {
    if (!this.keepGrids || poses.length === 0) return Effect.void
    const [first, ...rest] = poses
    const decodes = rest.map((pose) => this.panoramaAt(pose).pipe(Effect.flatMap((id) => this.dataset.panorama(id, this.span))))
    const work = Effect.ignore(Effect.all([this.render(first), ...decodes], { concurrency: "unbounded" }))
    return Effect.asVoid(this.scope === undefined ? Effect.forkDaemon(work) : Effect.forkIn(work, this.scope))
  }
}
