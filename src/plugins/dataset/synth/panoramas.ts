import type { Rng } from "../../../core/random.ts"
import { type City, type Edge, toGeocode } from "./city.ts"

/** Street-view positions: every intersection and points at most this far apart along streets. */
export const PANORAMA_SPACING = 12

export interface PanoramaSite {
  readonly panoId: string
  readonly x: number
  readonly y: number
  readonly geocode: readonly [number, number]
  /** North offset of the panorama's columns (degrees, 2 decimals as the real metadata). */
  readonly rotation: number
  /** The edge the site lies on, or the node it is at. */
  readonly edge: number | undefined
  readonly node: number | undefined
}

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

export const randomId = (rng: Rng, length = 22): string => Array.from({ length }, () => ID_ALPHABET[rng.choiceIndex(ID_ALPHABET.length)]).join("")

export const samplesOn = (edge: Edge): number => Math.max(1, Math.ceil(edge.length / PANORAMA_SPACING))

/** The panorama sites of a city, created as routes reach the streets they stand on. */
export class PanoramaSites {
  private readonly sites = new Map<string, PanoramaSite>()

  constructor(
    private readonly city: City,
    private readonly rng: Rng
  ) {}

  private site(key: string, x: number, y: number, edge: number | undefined, node: number | undefined): PanoramaSite {
    const hit = this.sites.get(key)
    if (hit !== undefined) return hit
    const site: PanoramaSite = {
      panoId: randomId(this.rng),
      x,
      y,
      geocode: toGeocode(this.city.style, x, y),
      rotation: Math.round(this.rng.random() * 36000) / 100,
      edge,
      node
    }
    this.sites.set(key, site)
    return site
  }

  node(id: number): PanoramaSite {
    const n = this.city.nodes[id]
    return this.site(`n${id}`, n.x, n.y, undefined, id)
  }

  /** Sample k of n along the edge (0 and n are its end nodes). */
  sample(edgeId: number, k: number): PanoramaSite {
    const edge = this.city.edges[edgeId]
    const n = samplesOn(edge)
    if (k <= 0) return this.node(edge.a)
    if (k >= n) return this.node(edge.b)
    const a = this.city.nodes[edge.a]
    const t = (k / n) * edge.length
    return this.site(`e${edgeId}:${k}`, a.x + edge.dx * t, a.y + edge.dy * t, edgeId, undefined)
  }

  /** Covers a whole street with sites, so every point a rail visits on it snaps to one. */
  cover(edgeId: number): void {
    const n = samplesOn(this.city.edges[edgeId])
    for (let k = 0; k <= n; k++) this.sample(edgeId, k)
  }

  all(): PanoramaSite[] {
    return [...this.sites.values()]
  }
}
