import { Layer } from "effect"
import { Sharding } from "../../core/sharding.ts"

/** Everything in this thread: the default, and the reference the other layers are tested against. */
export const layer = Layer.succeed(Sharding, { name: "local", environmentWorkers: 1 })
