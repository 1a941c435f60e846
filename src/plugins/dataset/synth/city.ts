import type { Rng } from "../../../core/random.ts"
import type { Brand, Rgb } from "./brands.ts"
import type { CityStyle } from "./styles.ts"

/**
 * A procedural city in a local metric frame (x east, y north, metres): a street grid plus
 * diagonal avenues, the facades along every street, and the places (signs) on them.
 */
export interface Node {
  readonly id: number
  readonly x: number
  readonly y: number
  readonly edges: number[]
}

export interface Edge {
  readonly id: number
  readonly a: number
  readonly b: number
  readonly length: number
  /** Unit direction from a to b. */
  readonly dx: number
  readonly dy: number
}

export interface Building {
  readonly start: number
  readonly end: number
  readonly height: number
  readonly wall: Rgb
  /** Horizontal distance between window columns (metres). */
  readonly bay: number
}

/** One side of a street: a wall segment from (ax, ay) to (bx, by), facing the street. */
export interface Facade {
  readonly edge: number
  readonly side: 1 | -1
  readonly ax: number
  readonly ay: number
  readonly bx: number
  readonly by: number
  readonly length: number
  /** Unit normal pointing from the wall into the street. */
  readonly nx: number
  readonly ny: number
  readonly buildings: ReadonlyArray<Building>
}

/** A shop sign on a facade, centred `u` metres along it. */
export interface Place {
  readonly id: number
  readonly placeId: string
  readonly brand: Brand
  readonly facade: number
  readonly u: number
  /** Where the sign is, in the local frame. */
  readonly x: number
  readonly y: number
}

export interface City {
  readonly style: CityStyle
  readonly nodes: ReadonlyArray<Node>
  readonly edges: ReadonlyArray<Edge>
  readonly facades: ReadonlyArray<Facade>
  /** Facades of each edge: [side +1, side −1]. */
  readonly edgeFacades: ReadonlyArray<readonly [number, number]>
  /** Setback of the facades from each end of an edge (metres), as [at a, at b]. */
  readonly trims: ReadonlyArray<readonly [number, number]>
  readonly places: Place[]
  /** Elevation (degrees) of the distant skyline in half-degree bins of world bearing. */
  readonly skyline: Float64Array
}

/** Width of a sign along its facade (metres). */
export const SIGN_WIDTH = 6

const metresPerDegree = (latitude: number): { lat: number; lng: number } => {
  const phi = (latitude * Math.PI) / 180
  return {
    lat: 111132.92 - 559.82 * Math.cos(2 * phi) + 1.175 * Math.cos(4 * phi),
    lng: 111412.84 * Math.cos(phi) - 93.5 * Math.cos(3 * phi)
  }
}

const round7 = (v: number): number => Number(v.toFixed(7))

/** Latitude and longitude of a local point, to 7 decimals as the real dataset's geocodes. */
export const toGeocode = (style: CityStyle, x: number, y: number): [number, number] => {
  const m = metresPerDegree(style.origin[0])
  return [round7(style.origin[0] + y / m.lat), round7(style.origin[1] + x / m.lng)]
}

export const terrainHeight = (style: CityStyle, x: number, y: number): number =>
  style.hillAmplitude === 0 ? 0 : style.hillAmplitude * Math.sin(x / style.hillWavelength) * Math.cos(y / style.hillWavelength)

export const uniform = (rng: Rng, [lo, hi]: readonly [number, number]): number => lo + (hi - lo) * rng.random()

const bearingVector = (degrees: number): [number, number] => {
  const r = (degrees * Math.PI) / 180
  return [Math.sin(r), Math.cos(r)]
}

interface Line {
  /** Nodes on the line with their position along it. */
  readonly stops: Array<{ node: number; t: number }>
}

/** Shortest street segment allowed: keeps rails and facades well formed. */
const MIN_EDGE = 25

const buildNetwork = (style: CityStyle, diagonalShift: number) => {
  const ua = bearingVector(style.gridBearing)
  const us = bearingVector(style.gridBearing + 90)
  const La = (style.streets - 1) * style.streetSpacing
  const Lb = (style.avenues - 1) * style.avenueSpacing
  const nodes: Node[] = []
  const keyed = new Map<string, number>()
  const nodeAt = (key: string, a: number, b: number): number => {
    const hit = keyed.get(key)
    if (hit !== undefined) return hit
    const id = nodes.length
    nodes.push({ id, x: a * ua[0] + b * us[0], y: a * ua[1] + b * us[1], edges: [] })
    keyed.set(key, id)
    return id
  }
  const avenues: Line[] = Array.from({ length: style.avenues }, () => ({ stops: [] }))
  const streets: Line[] = Array.from({ length: style.streets }, () => ({ stops: [] }))
  for (let i = 0; i < style.avenues; i++) {
    for (let j = 0; j < style.streets; j++) {
      const node = nodeAt(`g${i},${j}`, j * style.streetSpacing, i * style.avenueSpacing)
      avenues[i].stops.push({ node, t: j * style.streetSpacing })
      streets[j].stops.push({ node, t: i * style.avenueSpacing })
    }
  }
  const diagonals: Line[] = style.diagonals.map(({ offset, at }, d) => {
    const line: Line = { stops: [] }
    const ca = La / 2 + at + diagonalShift
    const cb = Lb / 2
    const da = Math.cos((offset * Math.PI) / 180)
    const db = Math.sin((offset * Math.PI) / 180)
    const inside = (a: number, b: number) => a >= -1e-6 && a <= La + 1e-6 && b >= -1e-6 && b <= Lb + 1e-6
    for (let i = 0; i < style.avenues && Math.abs(db) > 1e-9; i++) {
      const t = (i * style.avenueSpacing - cb) / db
      const a = ca + t * da
      if (!inside(a, i * style.avenueSpacing)) continue
      const node = nodeAt(`d${d}a${i}`, a, i * style.avenueSpacing)
      line.stops.push({ node, t })
      avenues[i].stops.push({ node, t: a })
    }
    for (let j = 0; j < style.streets && Math.abs(da) > 1e-9; j++) {
      const t = (j * style.streetSpacing - ca) / da
      const b = cb + t * db
      if (!inside(j * style.streetSpacing, b)) continue
      const node = nodeAt(`d${d}s${j}`, j * style.streetSpacing, b)
      line.stops.push({ node, t })
      streets[j].stops.push({ node, t: b })
    }
    return line
  })
  const edges: Edge[] = []
  let shortest = Infinity
  for (const line of [...avenues, ...streets, ...diagonals]) {
    line.stops.sort((p, q) => p.t - q.t)
    for (let k = 1; k < line.stops.length; k++) {
      const a = nodes[line.stops[k - 1].node]
      const b = nodes[line.stops[k].node]
      const length = Math.hypot(b.x - a.x, b.y - a.y)
      if (length < 1e-6) continue
      shortest = Math.min(shortest, length)
      const id = edges.length
      edges.push({ id, a: a.id, b: b.id, length, dx: (b.x - a.x) / length, dy: (b.y - a.y) / length })
      a.edges.push(id)
      b.edges.push(id)
    }
  }
  return { nodes, edges, shortest }
}

/** Unit direction of an edge leaving `node`. */
export const leaving = (edge: Edge, node: number): [number, number] => (edge.a === node ? [edge.dx, edge.dy] : [-edge.dx, -edge.dy])

export const otherEnd = (edge: Edge, node: number): number => (edge.a === node ? edge.b : edge.a)

/** How far a facade must stay from a node so that it does not cross the other streets there. */
const setback = (nodes: ReadonlyArray<Node>, edges: ReadonlyArray<Edge>, edge: Edge, node: number, offset: number): number => {
  const [dx, dy] = leaving(edge, node)
  let trim = 0
  for (const other of nodes[node].edges) {
    if (other === edge.id) continue
    const [ox, oy] = leaving(edges[other], node)
    const sin = Math.abs(dx * oy - dy * ox)
    if (sin < 0.17) continue
    trim = Math.max(trim, Math.min(offset * 3, offset / sin + offset * Math.abs(dx * ox + dy * oy) / sin))
  }
  return trim
}

const splitBuildings = (style: CityStyle, length: number, rng: Rng): Building[] => {
  const buildings: Building[] = []
  let start = 0
  while (length - start > 0.5) {
    let width = uniform(rng, style.buildingWidth)
    if (length - start - width < style.buildingWidth[0] * 0.6) width = length - start
    buildings.push({
      start,
      end: start + width,
      height: uniform(rng, style.buildingHeight),
      wall: style.walls[rng.choiceIndex(style.walls.length)],
      bay: 2.2 + rng.random() * 1.2
    })
    start += width
  }
  return buildings
}

const SKYLINE_BINS = 720

const drawSkyline = (style: CityStyle, rng: Rng): Float64Array => {
  const skyline = new Float64Array(SKYLINE_BINS)
  const [lo, hi] = style.skylineElevation
  if (style.skylineKind === "towers") {
    for (let i = 0; i < SKYLINE_BINS;) {
      const width = 3 + Math.floor(rng.random() * 12)
      const height = rng.random() < 0.3 ? lo * 0.5 : uniform(rng, [lo, hi])
      for (let k = 0; k < width && i < SKYLINE_BINS; k++, i++) skyline[i] = height
    }
  } else {
    const waves = Array.from({ length: 3 }, (_, k) => ({ f: k + 1 + Math.floor(rng.random() * 3), phase: rng.random() * 2 * Math.PI }))
    for (let i = 0; i < SKYLINE_BINS; i++) {
      const a = (i / SKYLINE_BINS) * 2 * Math.PI
      const v = waves.reduce((s, w) => s + Math.sin(w.f * a + w.phase), 0) / 3
      skyline[i] = lo + (hi - lo) * (0.5 + 0.5 * v)
    }
  }
  return skyline
}

export const buildCity = (style: CityStyle, rng: Rng): City => {
  // slide the diagonals along the grid to where they leave no stub of a street
  let network = buildNetwork(style, 0)
  for (let shift = -style.streetSpacing; shift <= style.streetSpacing; shift += 1) {
    const candidate = buildNetwork(style, shift)
    if (candidate.shortest > network.shortest + 1e-9) network = candidate
  }
  if (network.shortest < MIN_EDGE) throw new Error(`style ${style.name}: its diagonals leave streets shorter than ${MIN_EDGE} m`)
  const { nodes, edges } = network
  const offset = style.streetHalfWidth
  const facades: Facade[] = []
  const edgeFacades: Array<readonly [number, number]> = []
  const trims: Array<readonly [number, number]> = []
  for (const edge of edges) {
    const trimA = setback(nodes, edges, edge, edge.a, offset)
    const trimB = setback(nodes, edges, edge, edge.b, offset)
    trims.push([trimA, trimB])
    const a = nodes[edge.a]
    const b = nodes[edge.b]
    const ids = ([1, -1] as const).map((side) => {
      // right of the a→b direction is (dy, −dx)
      const rx = edge.dy * side * offset
      const ry = -edge.dx * side * offset
      const ax = a.x + edge.dx * trimA + rx
      const ay = a.y + edge.dy * trimA + ry
      const bx = b.x - edge.dx * trimB + rx
      const by = b.y - edge.dy * trimB + ry
      const length = Math.max(0, edge.length - trimA - trimB)
      facades.push({
        edge: edge.id,
        side,
        ax,
        ay,
        bx,
        by,
        length,
        nx: -rx / offset,
        ny: -ry / offset,
        buildings: splitBuildings(style, length, rng)
      })
      return facades.length - 1
    })
    edgeFacades.push([ids[0], ids[1]])
  }
  return { style, nodes, edges, facades, edgeFacades, trims, places: [], skyline: drawSkyline(style, rng) }
}
