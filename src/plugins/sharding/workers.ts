import { Layer } from "effect"
import * as os from "node:os"
import { Sharding } from "../../core/sharding.ts"

/** One worker per core, leaving one for the trainer (at least 2). */
export const defaultWorkers = () => Math.max(2, os.availableParallelism() - 1)

/**
 * A run's environments in `workers` threads (never more threads than environments): each steps
 * its share of the slots — verification, instructions, street-view rendering — while the policy
 * answers for all slots at once in the trainer. Same seed, same results as `local`.
 */
export const layer = (workers: number = defaultWorkers()) =>
  Layer.succeed(Sharding, { name: `workers:${workers}`, environmentWorkers: Math.max(1, Math.floor(workers)) })
