import { Effect } from "effect"
import { DatasetError, type RouteDataset } from "../../../core/dataset.ts"
import { viewHeadings } from "./geo.ts"
import type { ViewPose } from "./episode.ts"
import { perspectiveView, type RgbImage } from "./projection.ts"
import { resizeBicubic } from "./resize.ts"

export const SEPARATOR = 5

export interface StreetViewConfig {
  readonly resolution: number
  readonly view_size: number
  readonly fov: number
  readonly mapping_radius: number
}

/** Places four tiles at cells (i % 2, i // 2) of a black canvas with 5-pixel separators. */
export const composeGrid = (tiles: ReadonlyArray<RgbImage>, resolution: number): RgbImage => {
  const side = 2 * resolution + SEPARATOR
  const rgb = new Uint8Array(side * side * 3)
  tiles.forEach((tile, i) => {
    const left = (i % 2) * (resolution + SEPARATOR)
    const top = Math.floor(i / 2) * (resolution + SEPARATOR)
    const rowBytes = resolution * 3
    for (let y = 0; y < resolution; y++) {
      rgb.set(tile.rgb.subarray(y * rowBytes, (y + 1) * rowBytes), ((top + y) * side + left) * 3)
    }
  })
  return { width: side, height: side, rgb }
}

/**
 * The visual observation (spec §5): four perspective views at h−135, h−45, h+45, h+135, each
 * resized to `resolution`, in a 2×2 grid. Finished tiles are cached by panorama, heading and
 * size: retries and revisits of a point cost nothing.
 */
export class StreetViewRenderer {
  private readonly tiles = new Map<string, RgbImage>()

  constructor(
    private readonly dataset: RouteDataset,
    private readonly config: StreetViewConfig,
    private readonly tileCacheSize = 256
  ) {}

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

  tile(panoId: string, heading: number): Effect.Effect<RgbImage, DatasetError> {
    const { resolution, view_size, fov } = this.config
    const key = `${panoId}@${heading}:${resolution}`
    const hit = this.tiles.get(key)
    if (hit !== undefined) return Effect.succeed(hit)
    return this.dataset.panorama(panoId).pipe(
      Effect.map((pano) => {
        const view = perspectiveView(pano, { heading, fov, width: view_size, height: view_size, northRotation: pano.rotation })
        const tile = resizeBicubic(view, resolution, resolution)
        this.tiles.set(key, tile)
        if (this.tiles.size > this.tileCacheSize) this.tiles.delete(this.tiles.keys().next().value as string)
        return tile
      })
    )
  }

  render(pose: ViewPose): Effect.Effect<RgbImage, DatasetError> {
    return this.panoramaAt(pose).pipe(
      Effect.flatMap((panoId) => Effect.forEach(viewHeadings(pose.heading, this.config.fov), (h) => this.tile(panoId, h))),
      Effect.map((tiles) => composeGrid(tiles, this.config.resolution))
    )
  }
}
