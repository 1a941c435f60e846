import type { PanoramaMatch } from "../../core/dataset.ts"
import { haversineDistance } from "../../domain/virl/geo.ts"

/** Metres per degree of latitude, a lower bound good enough to size the buckets. */
const METRES_PER_DEGREE = 110_000
const CELL_DEGREES = 0.0005

const cellKey = (latCell: number, lngCell: number): string => `${latCell}:${lngCell}`
const exactKey = (geocode: readonly [number, number]): string => `${geocode[0]},${geocode[1]}`

/**
 * The gps_pano_mapping as a lookup: exact keys (Python tuple equality), and the nearest key by
 * haversine distance below a radius. Keys are bucketed on a lat/lng grid; candidates come from
 * the cells the radius can reach and ties go to the earlier key, as numpy's argmin does.
 */
export class PanoramaIndex {
  private readonly exact = new Map<string, number>()
  private readonly cells = new Map<string, number[]>()

  constructor(readonly entries: ReadonlyArray<PanoramaMatch>) {
    entries.forEach((entry, i) => {
      const key = exactKey(entry.geocode)
      if (!this.exact.has(key)) this.exact.set(key, i)
      const cell = cellKey(Math.floor(entry.geocode[0] / CELL_DEGREES), Math.floor(entry.geocode[1] / CELL_DEGREES))
      const bucket = this.cells.get(cell)
      if (bucket === undefined) this.cells.set(cell, [i])
      else bucket.push(i)
    })
  }

  get size(): number {
    return this.entries.length
  }

  lookup(geocode: readonly [number, number]): PanoramaMatch | undefined {
    const i = this.exact.get(exactKey(geocode))
    return i === undefined ? undefined : this.entries[i]
  }

  nearest(geocode: readonly [number, number], radiusMetres: number): PanoramaMatch | undefined {
    const exact = this.lookup(geocode)
    if (exact !== undefined) return exact
    const latSpan = Math.ceil(radiusMetres / METRES_PER_DEGREE / CELL_DEGREES) + 1
    const cosLat = Math.max(Math.cos((geocode[0] * Math.PI) / 180), 1e-6)
    const lngSpan = Math.ceil(radiusMetres / (METRES_PER_DEGREE * cosLat) / CELL_DEGREES) + 1
    const latCell = Math.floor(geocode[0] / CELL_DEGREES)
    const lngCell = Math.floor(geocode[1] / CELL_DEGREES)
    let best = -1
    let bestDistance = Infinity
    for (let a = latCell - latSpan; a <= latCell + latSpan; a++) {
      for (let b = lngCell - lngSpan; b <= lngCell + lngSpan; b++) {
        for (const i of this.cells.get(cellKey(a, b)) ?? []) {
          const d = haversineDistance(geocode, this.entries[i].geocode)
          if (d < bestDistance || (d === bestDistance && i < best)) {
            bestDistance = d
            best = i
          }
        }
      }
    }
    return best >= 0 && bestDistance < radiusMetres ? this.entries[best] : undefined
  }
}
