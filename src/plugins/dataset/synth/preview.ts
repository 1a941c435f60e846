import { Effect } from "effect"
import sharp from "sharp"
import { DatasetError, type RouteDataset } from "../../../core/dataset.ts"
import type { Waypoint } from "../../../core/rail.ts"
import { buildRail } from "../../../domain/virl/rail.ts"
import { StreetViewRenderer } from "../../../domain/virl/street-view.ts"
import { PythonRandom } from "../../random/python-random.ts"
import { GLYPH_HEIGHT, hasGlyph, textBitmap } from "./font.ts"

export interface PreviewOptions {
  /** Routes shown, spread evenly over the dataset. */
  readonly routes: number
  /** Side of each of the four views in a grid (the environment's `resolution`). */
  readonly resolution: number
}

const LABEL_SCALE = 2
const LABEL_HEIGHT = GLYPH_HEIGHT * LABEL_SCALE + 8
const GAP = 8

const drawLabel = (canvas: Uint8Array, width: number, left: number, top: number, text: string): void => {
  const bitmap = textBitmap([...text].filter(hasGlyph).join(""))
  for (let y = 0; y < bitmap.height * LABEL_SCALE; y++) {
    for (let x = 0; x < bitmap.width * LABEL_SCALE; x++) {
      const px = left + x
      if (px >= width) break
      if (bitmap.bits[Math.floor(y / LABEL_SCALE) * bitmap.width + Math.floor(x / LABEL_SCALE)] === 1) {
        canvas.fill(255, ((top + y) * width + px) * 3, ((top + y) * width + px) * 3 + 3)
      }
    }
  }
}

/**
 * A contact sheet of what the agent sees: for a few routes, the 2×2 observation at the start,
 * at the first intersection and at the destination, each labelled. Returns PNG bytes.
 */
export const contactSheet = (dataset: RouteDataset, options: PreviewOptions): Effect.Effect<Buffer, DatasetError> =>
  Effect.gen(function*() {
    const renderer = new StreetViewRenderer(dataset, { resolution: options.resolution, view_size: 640, fov: 90, mapping_radius: 20 })
    const count = Math.min(options.routes, dataset.routes.length)
    const picks = Array.from({ length: count }, (_, i) => Math.floor((i * dataset.routes.length) / count))
    const cell = 2 * options.resolution + 5
    const columns = 3
    const width = columns * cell + (columns + 1) * GAP
    const rowHeight = cell + LABEL_HEIGHT + GAP
    const height = count * rowHeight + GAP
    const canvas = new Uint8Array(width * height * 3).fill(24)
    for (const [row, routeIndex] of picks.entries()) {
      const route = dataset.routes[routeIndex]
      const rail = yield* Effect.try({
        try: () =>
          buildRail(
            route,
            routeIndex,
            route.init_heading ?? 90,
            { relocation: true, drop_rate: 0, straight_line_length: 5, mapping_radius: 20, wrap_turns: false },
            new PythonRandom(0),
            (g, r) => dataset.nearestPanorama(g, r)
          ),
        catch: (e) => new DatasetError({ path: dataset.root, field: `route ${routeIndex}`, message: String(e) })
      })
      const firstTurn = rail.waypoints.findIndex((w, i) => i > 0 && !w.interpolated)
      const shown: Array<[string, Waypoint]> = [
        [`route ${routeIndex} start`, rail.waypoints[0]],
        [`intersection`, rail.waypoints[firstTurn]],
        [`destination ${route.dest_place.name}`, rail.waypoints[rail.waypoints.length - 1]]
      ]
      for (const [col, [label, waypoint]] of shown.entries()) {
        const image = yield* renderer.render({ geocode: waypoint.geocode, heading: waypoint.heading })
        const left = GAP + col * (cell + GAP)
        const top = GAP + row * rowHeight
        drawLabel(canvas, width, left, top + 4, label)
        for (let y = 0; y < cell; y++) {
          canvas.set(image.rgb.subarray(y * cell * 3, (y + 1) * cell * 3), ((top + LABEL_HEIGHT + y) * width + left) * 3)
        }
      }
    }
    return yield* Effect.tryPromise({
      try: () => sharp(canvas, { raw: { width, height, channels: 3 } }).png().toBuffer(),
      catch: (e) => new DatasetError({ path: dataset.root, message: `cannot encode the contact sheet: ${String(e)}` })
    })
  })
