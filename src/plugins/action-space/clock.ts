import { Layer } from "effect"
import { ActionSpace, type ActionSpaceDefinition } from "../../core/action-space.ts"

/**
 * Turns as clock-face directions relative to the agent — "turn_direction(3 o'clock)" for a right
 * turn — a rule set the paper never tried: the same relative turns as `relative`, named in words
 * no training data uses. Hours: left 9, right 3, slightly left 11, slightly right 1.
 */
const HOURS: Readonly<Record<string, string>> = {
  left: "9 o'clock",
  right: "3 o'clock",
  "slightly left": "11 o'clock",
  "slightly right": "1 o'clock"
}

const TURN = /^turn_direction\((.*)\)$/

export const clock: ActionSpaceDefinition = {
  name: "clock",
  module: import.meta.url,
  promptText: `"forward()": indicates moving forward one step
"turn_direction(x)": indicates adjust the ego agent direction towards x, a direction on a clock face where 12 o'clock is straight ahead. x could be any following ["9 o'clock", "3 o'clock", "11 o'clock", "1 o'clock"]
"stop()": indicates the navigation is finished.`,
  actions: ["forward()", ...Object.values(HOURS).map((h) => `turn_direction(${h})`), "stop()"],
  groundTruth: (waypoint) => {
    const turn = TURN.exec(waypoint.relativeAction)
    if (turn === null) return waypoint.relativeAction
    const hour = HOURS[turn[1]!]
    if (hour === undefined) throw new Error(`clock action space: no hour for the turn ${waypoint.relativeAction}`)
    return `turn_direction(${hour})`
  }
}

export const layer = Layer.succeed(ActionSpace, clock)
