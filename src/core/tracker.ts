import { Context, type Effect } from "effect"

/**
 * Where a run's numbers go. The JSONL tracker always writes them to the run folder; others
 * (Weights & Biases) upload from that record and must never block or fail a run.
 */
export interface TrackerService {
  readonly log: (record: Readonly<Record<string, unknown>>) => Effect.Effect<void>
  readonly summary: (record: Readonly<Record<string, unknown>>) => Effect.Effect<void>
  /** Flush what is pending (end of a run); bounded in time. */
  readonly close: Effect.Effect<void>
}

export class Tracker extends Context.Tag("virl/Tracker")<Tracker, TrackerService>() {}
