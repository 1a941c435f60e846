import type { PanoramaMatch, Route } from "../../core/dataset.ts"
import type { Rail, Waypoint } from "../../core/rail.ts"
import type { Rng } from "../../core/random.ts"
import { type Geocode, geodesicDistance, interpolate } from "./geo.ts"
import { globalInstruction, instructionSentences, parseTurns, RouteError, type Turn } from "./instructions.ts"
import { parseMilestones } from "./milestones.ts"

export interface RailConfig {
  readonly relocation: boolean
  readonly drop_rate: number
  readonly straight_line_length: number
  /** Metres within which a geocode snaps to a mapped panorama (the reference's MAPPING_RADIUS). */
  readonly mapping_radius: number
  /** Wrap heading differences to ±180 before classifying turns (off: the reference's labels). */
  readonly wrap_turns: boolean
}

export type Relocate = (geocode: Geocode, radius: number) => PanoramaMatch | undefined

/** Legs shorter than this are not interpolated (metres). */
const MIN_LEG_FOR_INTERPOLATION = 5
/** A relocated interpolated point must be farther than this from both ends of its leg (metres). */
const MIN_GAP_TO_KEY_POINT = 8

/**
 * The initial heading of an episode: the route's `init_heading`, or a draw when it is missing
 * or 0 (spec §3) — one `randint(0, 359)`.
 */
export const initialHeading = (route: Route, rng: Rng): number => {
  const heading = route.init_heading ?? 0
  return heading === 0 ? rng.randint(0, 359) : heading
}

/**
 * Builds the rail of one route, drawing from `rng` exactly as the reference does: one
 * `random()` per candidate interpolated point, even when `drop_rate` is 0.
 */
export const buildRail = (
  route: Route,
  routeIndex: number,
  startHeading: number,
  config: RailConfig,
  rng: Rng,
  relocate: Relocate,
  /** Other wording of the sentences (pretraining); the reference's own when absent. */
  wording?: (turns: ReadonlyArray<Turn>) => string[]
): Rail => {
  const relocateKeyPoint = (geocode: Geocode, field: string): Geocode => {
    const match = relocate(geocode, config.mapping_radius)
    if (match === undefined) {
      throw new RouteError({
        routeIndex,
        field,
        message: `no panorama within ${config.mapping_radius} m of (${geocode[0]}, ${geocode[1]})`
      })
    }
    return match.geocode
  }
  const start: Geocode = config.relocation
    ? relocateKeyPoint(route.start_place.relocated_geocode, "start_place.relocated_geocode")
    : route.start_place.relocated_geocode

  const milestones = parseMilestones(route.milestone_info)
  const keyPoints = route.route_results.geocode_list
  if (milestones.length !== keyPoints.length) {
    throw new RouteError({
      routeIndex,
      field: "milestone_info",
      message: `${milestones.length} milestone blocks for ${keyPoints.length} points in route_results.geocode_list; they must match`
    })
  }
  const turns = parseTurns(routeIndex, milestones, startHeading, config.wrap_turns)
  const sentences = wording?.(turns) ?? instructionSentences(turns)
  const legHeadings = [startHeading, ...turns.map((t) => t.heading)]
  const landmarks = ["No landmarks nearby", ...turns.map((t) => t.landmark)]
  const absoluteActions = [...turns.map((t) => `turn_direction(${t.compass})`), "stop()"]
  const relativeActions = [...turns.map((t) => `turn_direction(${t.turnClass})`), "stop()"]

  const waypoints: Waypoint[] = []
  let previous = start
  let instructionIdx = 0
  ;[start, ...keyPoints].forEach((rawPoint, idx) => {
    const distance = geodesicDistance(previous, rawPoint)
    const point = config.relocation
      ? idx === 0
        ? start
        : relocateKeyPoint(rawPoint, `route_results.geocode_list[${idx - 1}]`)
      : rawPoint
    if (distance > MIN_LEG_FOR_INTERPOLATION) {
      const n = config.straight_line_length
      for (let i = 0; i < n; i++) {
        if (rng.random() < config.drop_rate) continue
        const candidate = interpolate(previous, point, i + 1, n)
        let located: Geocode = candidate
        if (config.relocation) {
          const match = relocate(candidate, config.mapping_radius)
          if (match === undefined) continue
          located = match.geocode
          if (
            !(geodesicDistance(previous, located) > MIN_GAP_TO_KEY_POINT &&
              geodesicDistance(point, located) > MIN_GAP_TO_KEY_POINT)
          ) {
            continue
          }
        }
        waypoints.push({
          geocode: located,
          heading: legHeadings[idx],
          absoluteAction: "forward()",
          relativeAction: "forward()",
          observation: "No landmarks nearby",
          intersectionObservation: "",
          instruction: sentences[instructionIdx],
          instructionIndex: instructionIdx + 1,
          interpolated: true
        })
      }
      instructionIdx += 1
    }
    // stop() shares the last move sentence
    if (absoluteActions[idx] === "stop()") instructionIdx -= 1
    waypoints.push({
      geocode: point,
      heading: legHeadings[idx],
      absoluteAction: absoluteActions[idx],
      relativeAction: relativeActions[idx],
      observation: landmarks[idx],
      intersectionObservation: idx !== 0 ? "You observe an intersection" : "",
      instruction: sentences[instructionIdx],
      instructionIndex: instructionIdx + 1,
      interpolated: false
    })
    instructionIdx += 1
    previous = point
  })
  return { globalInstruction: globalInstruction(sentences), instructions: sentences, waypoints, routeIndex, initialHeading: startHeading }
}
