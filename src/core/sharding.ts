import { Context } from "effect"

/**
 * Where a run's work goes. Results never depend on it: the same seed gives the same weights,
 * metrics and logs under every layer (tested), so it is not part of a run's identity.
 *
 * - local: everything in this thread (the default, and the reference for correctness);
 * - workers: the environments of a run (stepping, verification, rendering) split over worker
 *   threads, while the policy answers for all of them at once in the trainer;
 * - cluster (sweeps): trials as durable jobs on `virl runner`s sharing a database — chosen on
 *   `virl sweep` with `--sharding cluster --db URL`.
 */
export interface ShardingService {
  readonly name: string
  /** Worker threads a run's environments are split over; 1 steps them in this thread. */
  readonly environmentWorkers: number
}

export class Sharding extends Context.Tag("virl/Sharding")<Sharding, ShardingService>() {}
