import { Layer } from "effect"
import { ActionSpace, type ActionSpaceDefinition } from "../../core/action-space.ts"

const TURNS = ["left", "right", "slightly left", "slightly right"]

/** Turn classes relative to the previous heading: the paper's rule-OOD suite. */
export const relative: ActionSpaceDefinition = {
  name: "relative",
  module: import.meta.url,
  promptText: `"forward()": indicates moving forward one step
"turn_direction(x)": indicates adjust the ego agent direction towards x direction. x could be any following ['left', 'right', 'slightly left', 'slightly right']
"stop()": indicates the navigation is finished.`,
  actions: ["forward()", ...TURNS.map((t) => `turn_direction(${t})`), "stop()"],
  groundTruth: (waypoint) => waypoint.relativeAction
}

export const layer = Layer.succeed(ActionSpace, relative)
