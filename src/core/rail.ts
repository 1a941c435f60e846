/**
 * The rail: the sequence of points an episode walks, built at reset from a route. The agent
 * advances one point per correct answer; each point knows its ground truth.
 */
export interface Waypoint {
  readonly geocode: readonly [number, number]
  /** The heading of the leg arriving here (the initial heading at the start). */
  readonly heading: number
  /** Ground truth in compass directions: forward(), turn_direction(<compass>), stop(). */
  readonly absoluteAction: string
  /** Ground truth in turn classes: forward(), turn_direction(<left|right|slightly ...>), stop(). */
  readonly relativeAction: string
  /** Landmark text, e.g. "Starbucks is on your left" or "No landmarks nearby". */
  readonly observation: string
  readonly intersectionObservation: string
  readonly instruction: string
  /** 1-based index of `instruction` in the global instruction. */
  readonly instructionIndex: number
  /** True for the points interpolated along a leg. */
  readonly interpolated: boolean
}

export interface Rail {
  readonly globalInstruction: string
  readonly instructions: ReadonlyArray<string>
  readonly waypoints: ReadonlyArray<Waypoint>
  readonly routeIndex: number
  readonly initialHeading: number
}
