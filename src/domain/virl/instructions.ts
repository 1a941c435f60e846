import type { Milestone } from "./milestones.ts"
import type { Rng } from "../../core/random.ts"
import { strip } from "./python-text.ts"

/**
 * A route the rail cannot be built from, naming the route and the field. Thrown by the rail's
 * synchronous code; the environment's boundary (Effect.try) turns it into an EnvironmentError.
 */
export class RouteError extends Error {
  readonly routeIndex: number
  readonly field: string
  constructor(fields: { readonly routeIndex: number; readonly field: string; readonly message: string }) {
    super(fields.message)
    this.name = "RouteError"
    this.routeIndex = fields.routeIndex
    this.field = fields.field
  }
  override toString(): string {
    return `route ${this.routeIndex} (${this.field}): ${this.message}`
  }
}

export type TurnClass = "left" | "right" | "slightly left" | "slightly right"

/**
 * The turn class of a heading change. The reference does not wrap the difference to ±180, so
 * 350 → 10 is "left" rather than "slightly right" (spec §4); `wrapTurns` fixes that.
 */
export const turnClass = (next: number, previous: number, wrapTurns = false): TurnClass => {
  let diff = next - previous
  if (wrapTurns) diff = ((((diff + 180) % 360) + 360) % 360) - 180
  if (diff < -45) return "left"
  if (diff > 45) return "right"
  if (diff <= 0) return "slightly left"
  return "slightly right"
}

/** One intersection of the route, as the milestone text describes it. */
export interface Turn {
  readonly landmark: string
  readonly heading: number
  readonly compass: string
  readonly turnClass: TurnClass
}

const DEFAULT_LANDMARK = "No landmark nearby"

/** `"177 (south)"` → 177 and "south", as the reference splits it. */
const parseHeading = (routeIndex: number, idx: number, text: string): { heading: number; compass: string } => {
  const field = `milestone_info block ${idx + 1} to_next_intersection_heading`
  const open = text.indexOf("(")
  if (open < 0) throw new RouteError({ routeIndex, field, message: `expected "<degrees> (<direction>)", got ${JSON.stringify(text)}` })
  const compass = text.slice(open + 1).split("(")[0].split(")")[0]
  const degrees = strip(text.slice(0, open))
  if (!/^[+-]?\d+$/.test(degrees)) {
    throw new RouteError({ routeIndex, field, message: `heading ${JSON.stringify(degrees)} is not an integer` })
  }
  return { heading: Number.parseInt(degrees, 10), compass }
}

export const parseTurns = (routeIndex: number, milestones: ReadonlyArray<Milestone>, initialHeading: number, wrapTurns = false): Turn[] => {
  let previous = initialHeading
  return milestones.map((milestone, idx) => {
    const raw = milestone["to_next_intersection_heading"]
    if (raw === undefined) {
      throw new RouteError({
        routeIndex,
        field: `milestone_info block ${idx + 1}`,
        message: "missing to_next_intersection_heading"
      })
    }
    const { heading, compass } = parseHeading(routeIndex, idx, raw)
    const turn: Turn = {
      landmark: milestone["landmarks"] ?? DEFAULT_LANDMARK,
      heading,
      compass,
      turnClass: turnClass(heading, previous, wrapTurns)
    }
    previous = heading
    return turn
  })
}

/** Two sentences per intersection: the turn, then the move to the next one (spec §4). */
export const instructionSentences = (turns: ReadonlyArray<Turn>): string[] =>
  turns.flatMap((turn, idx) => {
    const face = `${turn.turnClass} to face ${turn.compass}.`
    if (idx === turns.length - 1) {
      return [`Turn ${face}`, `Move forward until you reach destination where ${turn.landmark}.`]
    }
    const move = turn.landmark === DEFAULT_LANDMARK
      ? "Move forward until you reach next intersection."
      : `Move forward until you reach next intersection where ${turn.landmark}.`
    return [`${idx === 0 ? "First, turn" : "Turn"} ${face}`, move]
  })

export const globalInstruction = (sentences: ReadonlyArray<string>): string => sentences.map((sentence, i) => `${i + 1}. ${sentence}\n`).join("")

/**
 * Other wordings of the same instructions, for pretraining a base model on varied phrasing
 * (`instruction_variants`; the benchmark's own wording is variant 0). Every variant keeps the
 * turn class and the compass word as words of the sentence and a landmark after "where".
 */
const TURN_VARIANTS: ReadonlyArray<(first: boolean, turnClass: string, compass: string) => string> = [
  (first, c, d) => `${first ? "First, turn" : "Turn"} ${c} to face ${d}.`,
  (first, c, d) => `${first ? "First, make a" : "Make a"} ${c} turn to face ${d}.`,
  (first, c, d) => `${first ? "First, go" : "Go"} ${c} so that you face ${d}.`,
  (first, c, d) => `${first ? "First, head" : "Head"} ${d} by turning ${c}.`,
  (first, c, d) => `${first ? "To start, turn" : "Now turn"} ${c}, toward the ${d}.`
]

const MOVE_VARIANTS: ReadonlyArray<{ readonly next: string; readonly last: string; readonly where: string }> = [
  { next: "Move forward until you reach next intersection", last: "Move forward until you reach destination", where: " where" },
  { next: "Walk straight on to the next intersection", last: "Walk straight on to the destination", where: ", where" },
  { next: "Keep going until the next intersection", last: "Keep going until you arrive at the destination", where: ", where" },
  { next: "Go ahead as far as the next intersection", last: "Go ahead as far as the destination", where: ", where" }
]

/** The sentences of a route in one drawn wording (two draws: the turn and the move wording). */
export const variedSentences = (turns: ReadonlyArray<Turn>, rng: Rng): string[] => {
  const turn = TURN_VARIANTS[rng.choiceIndex(TURN_VARIANTS.length)]
  const move = MOVE_VARIANTS[rng.choiceIndex(MOVE_VARIANTS.length)]
  return turns.flatMap((t, idx) => {
    const last = idx === turns.length - 1
    const landmark = last || t.landmark !== DEFAULT_LANDMARK ? `${move.where} ${t.landmark}` : ""
    return [turn(idx === 0 && !last, t.turnClass, t.compass), `${last ? move.last : move.next}${landmark}.`]
  })
}
