import type { City } from "./city.ts"

/**
 * The street surface of a city as a raster, so that a panorama finds what lies under each of
 * its ground pixels with one lookup: pavement, road, lane marking, kerb or cable-car rail.
 */
export const PAVEMENT = 0
export const ROAD = 1
export const MARKING = 2
export const KERB = 3
export const RAIL = 4
/** Where two streets' rasters overlap the higher priority wins: road over kerb, paint over road. */
const PRIORITY = [0, 2, 3, 1, 3]

export interface GroundMap {
  readonly x0: number
  readonly y0: number
  readonly cell: number
  readonly columns: number
  readonly rows: number
  readonly surface: Uint8Array
}

const MARGIN = 200
const RAIL_OFFSET = 0.75

export const buildGround = (city: City, cell = 0.25): GroundMap => {
  const xs = city.nodes.map((n) => n.x)
  const ys = city.nodes.map((n) => n.y)
  const x0 = Math.min(...xs) - MARGIN
  const y0 = Math.min(...ys) - MARGIN
  const columns = Math.ceil((Math.max(...xs) + MARGIN - x0) / cell)
  const rows = Math.ceil((Math.max(...ys) + MARGIN - y0) / cell)
  const surface = new Uint8Array(columns * rows)
  const style = city.style
  const roadHalf = style.streetHalfWidth - style.sidewalk
  const reach = roadHalf + 0.25
  for (const edge of city.edges) {
    const a = city.nodes[edge.a]
    const b = city.nodes[edge.b]
    const minX = Math.max(0, Math.floor((Math.min(a.x, b.x) - reach - x0) / cell))
    const maxX = Math.min(columns - 1, Math.ceil((Math.max(a.x, b.x) + reach - x0) / cell))
    const minY = Math.max(0, Math.floor((Math.min(a.y, b.y) - reach - y0) / cell))
    const maxY = Math.min(rows - 1, Math.ceil((Math.max(a.y, b.y) + reach - y0) / cell))
    for (let j = minY; j <= maxY; j++) {
      const py = y0 + (j + 0.5) * cell - a.y
      for (let i = minX; i <= maxX; i++) {
        const px = x0 + (i + 0.5) * cell - a.x
        const along = px * edge.dx + py * edge.dy
        if (along < -reach || along > edge.length + reach) continue
        const lateral = Math.abs(px * edge.dy - py * edge.dx)
        if (lateral > reach) continue
        const clamped = Math.max(0, Math.min(edge.length, along))
        const distance = Math.hypot(px - clamped * edge.dx, py - clamped * edge.dy)
        let s: number
        if (distance > roadHalf) s = distance < reach ? KERB : PAVEMENT
        else if (style.cableCars && Math.abs(lateral - RAIL_OFFSET) < 0.07 && along > 0 && along < edge.length) s = RAIL
        else if (lateral < 0.13 && along > roadHalf && along < edge.length - roadHalf && along % 6 < 3) s = MARKING
        else s = ROAD
        const k = j * columns + i
        if (PRIORITY[s] > PRIORITY[surface[k]]) surface[k] = s
      }
    }
  }
  return { x0, y0, cell, columns, rows, surface }
}

export const surfaceAt = (ground: GroundMap, x: number, y: number): number => {
  const i = Math.floor((x - ground.x0) / ground.cell)
  const j = Math.floor((y - ground.y0) / ground.cell)
  if (i < 0 || j < 0 || i >= ground.columns || j >= ground.rows) return PAVEMENT
  return ground.surface[j * ground.columns + i]
}
