import geodesicModule from "geographiclib-geodesic"
import { libm } from "./libm.ts"

/** A (latitude, longitude) pair in degrees, as the dataset stores it. */
export type Geocode = readonly [number, number]

const wgs84 = geodesicModule.Geodesic.WGS84

/** WGS84 geodesic distance in metres (Karney's algorithm, as geopy's `geodesic` uses). */
export const geodesicDistance = (a: Geocode, b: Geocode): number => wgs84.Inverse(a[0], a[1], b[0], b[1]).s12 as number

const EARTH_RADIUS_KM = 6371.0
// Python's math.radians / math.degrees multiply by these constants; the rounding matters for headings.
const DEG_TO_RAD = Math.PI / 180.0
const RAD_TO_DEG = 180.0 / Math.PI
const radians = (deg: number): number => deg * DEG_TO_RAD

/** Haversine distance in metres on a 6371 km sphere, in the reference's order of operations. */
export const haversineDistance = (a: Geocode, b: Geocode): number => {
  const lat1 = radians(a[0])
  const lon1 = radians(a[1])
  const lat2 = radians(b[0])
  const lon2 = radians(b[1])
  const dlon = lon2 - lon1
  const dlat = lat2 - lat1
  const h = libm.sin(dlat / 2.0) ** 2 + libm.cos(lat1) * libm.cos(lat2) * libm.sin(dlon / 2.0) ** 2
  return EARTH_RADIUS_KM * (2 * libm.asin(Math.sqrt(h))) * 1000
}

/** Python's `%` for floats: the result takes the sign of the divisor. */
export const pyMod = (a: number, n: number): number => {
  const r = a % n
  if (r === 0) return 0
  return (r < 0) !== (n < 0) ? r + n : r
}

/** Initial great-circle bearing from a to b, in [0, 360). */
export const headingBetween = (a: Geocode, b: Geocode): number => {
  const lat1 = radians(a[0])
  const lat2 = radians(b[0])
  const dlon = radians(b[1] - a[1])
  const x = libm.sin(dlon) * libm.cos(lat2)
  const y = libm.cos(lat1) * libm.sin(lat2) - libm.sin(lat1) * libm.cos(lat2) * libm.cos(dlon)
  return pyMod(libm.atan2(x, y) * RAD_TO_DEG + 360, 360)
}

export const COMPASS = ["north", "northeast", "east", "southeast", "south", "southwest", "west", "northwest"] as const
export const SPATIAL = ["front", "right front", "right", "right behind", "behind", "left behind", "left", "left front"] as const
const DIRECTION_HEADINGS = [0, 45, 90, 135, 180, 225, 270, 315]

/** Index of the heading closest to `expected` on the circle; the first one on a tie (numpy argmin). */
export const closestHeadingIndex = (expected: number, headings: ReadonlyArray<number>): number => {
  let best = 0
  let bestDiff = Infinity
  headings.forEach((h, i) => {
    let diff = Math.abs(h - expected)
    if (diff > 180) diff = 360 - diff
    if (diff < bestDiff) {
      bestDiff = diff
      best = i
    }
  })
  return best
}

export const compassWord = (heading: number): string => COMPASS[closestHeadingIndex(heading, DIRECTION_HEADINGS)]

/** Where something at bearing `headingTo` lies for an agent facing `agentHeading` ("left front", ...). */
export const spatialRelation = (agentHeading: number, headingTo: number): string =>
  SPATIAL[closestHeadingIndex(pyMod(headingTo - agentHeading, 360), DIRECTION_HEADINGS)]

/** The point i/n of the way from a to b, linear in latitude and longitude. */
export const interpolate = (a: Geocode, b: Geocode, i: number, n: number): Geocode => [
  a[0] * (1 - i / n) + b[0] * (i / n),
  a[1] * (1 - i / n) + b[1] * (i / n)
]

/**
 * Headings of the four views around the agent: the reference centres 360/fov views on the
 * current heading, which for fov 90 gives h−135, h−45, h+45, h+135 (spec §5).
 */
export const viewHeadings = (heading: number, fov = 90, headingRange = 360): number[] => {
  const count = Math.floor(headingRange / fov)
  const half = Math.floor(count / 2)
  const start = count % 2 === 0 ? pyMod(heading - half * fov + fov / 2, 360) : pyMod(heading - half * fov, 360)
  return Array.from({ length: count }, (_, i) => pyMod(start + i * fov, 360))
}
