import type { Rng } from "../../../core/random.ts"
import { compassWord, type Geocode, geodesicDistance, headingBetween, pyMod, spatialRelation } from "../../../domain/virl/geo.ts"
import { type Brand, BRANDS } from "./brands.ts"
import { type City, leaving, otherEnd, type Place, SIGN_WIDTH, toGeocode } from "./city.ts"
import { type PanoramaSites, randomId, samplesOn } from "./panoramas.ts"

/** One route as `route_infos.json` stores it (SFTvsRL_Data's keys). */
export interface RouteRecord {
  readonly start_place: { readonly name: string; readonly geocode: Geocode; readonly relocated_geocode: Geocode }
  readonly dest_place: { readonly name: string; readonly geocode: Geocode; readonly place_id: string }
  readonly init_heading: number
  readonly route_results: {
    readonly geocode_list: Geocode[]
    readonly landmark_list: Array<{ readonly name: string; readonly geocode: Geocode } | null>
  }
  readonly milestone_info: string
}

export interface RouteOptions {
  /** Intersections before the destination: the route has this many + 1 milestone blocks. */
  readonly intersections: readonly [number, number]
  /** Chance that an intersection of the route has a landmark. */
  readonly landmarkRate: number
}

export const DEFAULT_ROUTE_OPTIONS: RouteOptions = { intersections: [2, 7], landmarkRate: 0.7 }

/** Signs on one facade keep this far apart (metres). */
const SIGN_GAP = SIGN_WIDTH + 2
/** A corner landmark stands this far past the facade's end at the intersection (metres). */
const CORNER_INSET = SIGN_WIDTH / 2 + 1

const interior = (city: City, node: number): boolean => city.nodes[node].edges.length >= 3

/** Places (signs) of a city, created as routes need them and shared by every route after. */
export class PlaceBook {
  private readonly byFacade = new Map<number, Place[]>()

  constructor(
    private readonly city: City,
    private readonly rng: Rng
  ) {}

  /** The place at this spot, or a new one there with a brand not in `avoid`; undefined if a sign is too close. */
  at(facadeId: number, u: number, avoid: ReadonlySet<string>): Place | undefined {
    const facade = this.city.facades[facadeId]
    if (u < SIGN_WIDTH / 2 || u > facade.length - SIGN_WIDTH / 2) return undefined
    const existing = this.byFacade.get(facadeId) ?? []
    const same = existing.find((p) => Math.abs(p.u - u) < 0.5)
    if (same !== undefined) return avoid.has(same.brand.name) ? undefined : same
    if (existing.some((p) => Math.abs(p.u - u) < SIGN_GAP)) return undefined
    const brands = BRANDS.filter((b) => !avoid.has(b.name))
    const brand = brands[this.rng.choiceIndex(brands.length)] as Brand
    const t = u / facade.length
    const place: Place = {
      id: this.city.places.length,
      placeId: randomId(this.rng),
      brand,
      facade: facadeId,
      u,
      x: facade.ax + (facade.bx - facade.ax) * t,
      y: facade.ay + (facade.by - facade.ay) * t
    }
    this.city.places.push(place)
    existing.push(place)
    this.byFacade.set(facadeId, existing)
    return place
  }
}

const roundHeading = (h: number): number => pyMod(Math.round(h), 360)

const block = (fields: ReadonlyArray<readonly [string, string]>): string => `{\n${fields.map(([k, v]) => `"${k}": "${v}"`).join(",\n")}\n}`

/**
 * Draws one route: a start in the middle of a block, `intersections` turns at street corners
 * (no U-turns, no corner twice), and a destination sign in the middle of the last block.
 * Returns undefined when the walk runs into the city's edge; the caller draws again.
 */
const drawRoute = (city: City, sites: PanoramaSites, places: PlaceBook, rng: Rng, options: RouteOptions, index: number): RouteRecord | undefined => {
  const candidates = city.edges.filter((e) => interior(city, e.a) && interior(city, e.b) && samplesOn(e) >= 3)
  const startEdge = candidates[rng.choiceIndex(candidates.length)]
  const startSample = rng.randint(1, samplesOn(startEdge) - 1)
  const towardB = rng.random() < 0.5
  const count = rng.randint(options.intersections[0], options.intersections[1])
  const facing = rng.random() < 0.7 ? towardB : !towardB

  const path: number[] = [towardB ? startEdge.b : startEdge.a]
  const edgesUsed = [startEdge.id]
  let arrival = startEdge.id
  while (path.length < count) {
    const here = path[path.length - 1]
    const [ix, iy] = leaving(city.edges[arrival], here).map((v) => -v)
    const options = city.nodes[here].edges.filter((e) => {
      if (e === arrival) return false
      const next = otherEnd(city.edges[e], here)
      return !path.includes(next) && interior(city, next)
    })
    if (options.length === 0) return undefined
    // turns are drawn twice as often as going straight on, and the rarer slight turns onto or
    // off a diagonal eight times as often, so that every relative-turn class is well represented
    const weights = options.map((e) => {
      const [ox, oy] = leaving(city.edges[e], here)
      const cos = ix * ox + iy * oy
      return cos > 0.94 ? 1 : cos > 0.5 ? 8 : 2
    })
    let pick = rng.random() * weights.reduce((s, w) => s + w, 0)
    let chosen = options[options.length - 1]
    for (let k = 0; k < options.length; k++) {
      pick -= weights[k]
      if (pick < 0) {
        chosen = options[k]
        break
      }
    }
    path.push(otherEnd(city.edges[chosen], here))
    edgesUsed.push(chosen)
    arrival = chosen
  }
  const last = path[path.length - 1]
  const exits = city.nodes[last].edges.filter((e) => e !== arrival && samplesOn(city.edges[e]) >= 3 && !path.includes(otherEnd(city.edges[e], last)))
  if (exits.length === 0) return undefined
  const destEdge = city.edges[exits[rng.choiceIndex(exits.length)]]
  edgesUsed.push(destEdge.id)

  const landmarks: Array<Place | undefined> = []
  const used = new Set<string>()
  for (let k = 0; k < path.length; k++) {
    if (rng.random() >= options.landmarkRate) {
      landmarks.push(undefined)
      continue
    }
    const node = path[k]
    const edgeId = k + 1 < edgesUsed.length ? edgesUsed[k + (rng.random() < 0.5 ? 0 : 1)] : edgesUsed[k]
    const edge = city.edges[edgeId]
    const facadeId = city.edgeFacades[edgeId][rng.choiceIndex(2)]
    const facade = city.facades[facadeId]
    const u = edge.a === node ? CORNER_INSET : facade.length - CORNER_INSET
    const place = places.at(facadeId, u, new Set())
    landmarks.push(place)
    if (place !== undefined) used.add(place.brand.name)
  }

  const nDest = samplesOn(destEdge)
  const destSample = rng.randint(1, nDest - 1)
  const destFacade = city.edgeFacades[destEdge.id][rng.choiceIndex(2)]
  const destSite = sites.sample(destEdge.id, destEdge.a === last ? destSample : nDest - destSample)
  const facade = city.facades[destFacade]
  // the sign faces the destination's street-view point across the pavement
  const u = (destSite.x - facade.ax) * ((facade.bx - facade.ax) / Math.max(facade.length, 1e-9)) +
    (destSite.y - facade.ay) * ((facade.by - facade.ay) / Math.max(facade.length, 1e-9))
  const dest = places.at(destFacade, u, used)
  if (dest === undefined) return undefined

  for (const e of edgesUsed) sites.cover(e)
  const startSite = sites.sample(startEdge.id, startSample)
  const points = [...path.map((n) => sites.node(n).geocode), destSite.geocode]
  const start = startSite.geocode
  const headingAlong = roundHeading(headingBetween(start, sites.node(facing ? startEdge.b : startEdge.a).geocode))
  const blocks: string[] = []
  let previous = start
  points.forEach((point, k) => {
    const heading = roundHeading(headingBetween(previous, point))
    const fields: Array<readonly [string, string]> = [["intersection_idx", String(k + 1)]]
    const place = k < landmarks.length ? landmarks[k] : dest
    if (place !== undefined) {
      const to = headingBetween(point, toGeocode(city.style, place.x, place.y))
      fields.push(["landmarks", `${place.brand.name} is on your ${spatialRelation(heading, to)}`])
    }
    fields.push(["distance", `${Math.round(geodesicDistance(previous, point))} meters`])
    fields.push(["human_heading", String(heading)])
    fields.push(["to_next_intersection_heading", `${heading} (${compassWord(heading)})`])
    blocks.push(block(fields))
    previous = point
  })
  return {
    start_place: { name: `start ${index}`, geocode: start, relocated_geocode: start },
    dest_place: { name: dest.brand.name, geocode: destSite.geocode, place_id: dest.placeId },
    init_heading: headingAlong === 0 ? 360 : headingAlong,
    route_results: {
      geocode_list: points,
      landmark_list: landmarks.map((p) => (p === undefined ? null : { name: p.brand.name, geocode: toGeocode(city.style, p.x, p.y) }))
    },
    milestone_info: blocks.join("\n\n")
  }
}

export const drawRoutes = (
  city: City,
  sites: PanoramaSites,
  places: PlaceBook,
  rng: Rng,
  count: number,
  options: RouteOptions = DEFAULT_ROUTE_OPTIONS,
  firstIndex = 0
): RouteRecord[] => {
  const routes: RouteRecord[] = []
  let failures = 0
  while (routes.length < count) {
    const route = drawRoute(city, sites, places, rng, options, firstIndex + routes.length)
    if (route !== undefined) routes.push(route)
    else if (++failures > 100 * (count + 10)) throw new Error(`cannot draw ${count} routes in city ${city.style.name}: streets too few`)
  }
  return routes
}
