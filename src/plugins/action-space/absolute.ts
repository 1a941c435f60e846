import { Layer } from "effect"
import { ActionSpace, type ActionSpaceDefinition } from "../../core/action-space.ts"

const DIRECTIONS = ["north", "northeast", "east", "southeast", "south", "southwest", "west", "northwest"]

/** Compass directions: the paper's training rules and its in-distribution / visual-OOD suites. */
export const absolute: ActionSpaceDefinition = {
  name: "absolute",
  module: import.meta.url,
  promptText: `"forward()": indicates moving forward one step
"turn_direction(x)": indicates adjust the ego agent direction towards x direction. x could be any following 8 directions ['north', 'northeast', 'east', 'southeast', 'south', 'southwest', 'west', 'northwest']
"stop()": indicates the navigation is finished.`,
  actions: ["forward()", ...DIRECTIONS.map((d) => `turn_direction(${d})`), "stop()"],
  groundTruth: (waypoint) => waypoint.absoluteAction
}

export const layer = Layer.succeed(ActionSpace, absolute)
