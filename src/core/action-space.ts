import { Context } from "effect"
import type { Waypoint } from "./rail.ts"

/** Which actions exist, how the prompt describes them, and the ground truth at a rail point. */
export interface ActionSpaceDefinition {
  readonly name: string
  /** The `[Action space]` section of the prompt. */
  readonly promptText: string
  /** Every action the space allows, in a fixed order (a policy's choices). */
  readonly actions: ReadonlyArray<string>
  readonly groundTruth: (waypoint: Waypoint) => string
  /**
   * The module that exports this definition (`import.meta.url`), so that environments stepped in
   * worker threads (the `workers` sharding) can import it there too.
   */
  readonly module?: string
}

export class ActionSpace extends Context.Tag("virl/ActionSpace")<ActionSpace, ActionSpaceDefinition>() {}
