import { Context } from "effect"

/**
 * The run's seeded generator. Every random choice in virl goes through one of these so that
 * a recorded seed replays a run; the V-IRL layer reproduces Python's `random` draw for draw.
 */
export interface Rng {
  /** A float in [0, 1). */
  readonly random: () => number
  /** An integer in [a, b], both ends included (Python's `randint`). */
  readonly randint: (a: number, b: number) => number
  /** The index `random.choice` would pick from a sequence of length n. */
  readonly choiceIndex: (n: number) => number
  /** The generator's whole state, to store in a checkpoint. */
  readonly snapshot: () => RngSnapshot
  /** Continue from a stored state. */
  readonly restore: (snapshot: RngSnapshot) => void
}

export interface RngSnapshot {
  readonly algorithm: string
  readonly seed: string
  readonly state: ReadonlyArray<number>
}

/**
 * Where a run's generators come from: one algorithm, a generator per seed — the trainer's, the
 * environments', a fixed sampler's, the evaluation's. Training, evaluation and the environments
 * make every generator they draw from through the run's Random layer, so swapping the layer swaps
 * every draw; the same seed gives the same generator.
 */
export interface RandomSource {
  /** Names the algorithm (a checkpoint's generator state is restored only into the same one). */
  readonly name: string
  readonly make: (seed: number | bigint) => Rng
}

export class Random extends Context.Tag("virl/Random")<Random, RandomSource>() {}

export const choice = <A>(rng: Rng, items: ReadonlyArray<A>): A => {
  if (items.length === 0) throw new RangeError("cannot choose from an empty sequence")
  return items[rng.choiceIndex(items.length)] as A
}
