import { Effect } from "effect"
import type { EnvironmentError, Observation, ResetRequest, StepInfoRecord, Transition, VectorEnvironment } from "./environment.ts"
import type { PolicyInput } from "./policy.ts"

/** What a slot is playing: which episode of the queue, and what the policy is shown now. */
export interface LiveSlot {
  readonly episode: number
  readonly observation: Observation<StepInfoRecord>
}

/** One answered step of one slot, handed to the caller before an ended slot starts its next episode. */
export interface SlotStep<O> {
  readonly slot: number
  readonly episode: number
  readonly input: PolicyInput
  readonly output: O
  readonly transition: Transition<StepInfoRecord>
}

export const toInput = (o: Observation<StepInfoRecord>): PolicyInput => ({ chat: o.chat, image: o.image, info: o.info })

/**
 * The one scheduler of episodes over an environment's slots — evaluation suites, expert
 * demonstrations and PPO rollouts all run on it: a queue of `episodes` (Infinity: never drains),
 * each started on the first free slot, in slot order, on the route `route` names (undefined: the
 * environment draws one); every lock-step asks the policy once for all live slots, steps them,
 * and a slot whose episode ended starts the next one at once, after its step was handled.
 */
export class EpisodeSlots {
  private readonly live = new Map<number, LiveSlot>()
  private next = 0

  constructor(
    readonly env: VectorEnvironment<StepInfoRecord>,
    private readonly options: {
      readonly episodes: number
      readonly route?: (episode: number) => ResetRequest | undefined
      /** Told of each episode as it starts, with its first observation. */
      readonly onBegin?: (episode: number, observation: Observation<StepInfoRecord>) => void
    }
  ) {}

  /** Episodes started so far. */
  get started(): number {
    return this.next
  }

  /** Whether any slot is playing. */
  get busy(): boolean {
    return this.live.size > 0
  }

  /** The live slots, in slot order. */
  slots(): number[] {
    return [...this.live.keys()].sort((a, b) => a - b)
  }

  /** What each live slot is shown, in slot order. */
  inputs(): PolicyInput[] {
    return this.slots().map((s) => toInput(this.live.get(s)!.observation))
  }

  /** The next episode of the queue on `slot`, or the slot left free when the queue is drained. */
  begin(slot: number): Effect.Effect<void, EnvironmentError> {
    return Effect.suspend(() => {
      if (this.next >= this.options.episodes) {
        this.live.delete(slot)
        return Effect.void
      }
      const episode = this.next++
      return Effect.map(this.env.reset(slot, this.options.route?.(episode)), (observation) => {
        this.live.set(slot, { episode, observation })
        this.options.onBegin?.(episode, observation)
      })
    })
  }

  /** Starts episodes on every free slot, in slot order. */
  fill(): Effect.Effect<void, EnvironmentError> {
    return Effect.forEach(
      Array.from({ length: this.env.numEnvs }, (_, slot) => slot).filter((slot) => !this.live.has(slot)),
      (slot) => this.begin(slot),
      { discard: true }
    )
  }

  /** Puts back slots a checkpoint saved (observations from the environment's `restore`). */
  resume(observations: ReadonlyArray<Observation<StepInfoRecord> | null>, started: number): void {
    this.live.clear()
    observations.forEach((o, slot) => {
      if (o !== null) this.live.set(slot, { episode: slot, observation: o })
    })
    this.next = started
  }

  /**
   * One lock-step: the policy answers every live slot at once (`act`, with `text` reading an
   * answer's text), the environment steps them, and `handle` sees each slot's step in slot
   * order; a slot whose episode ended then begins the next one.
   */
  step<O, E1, R1, E2, R2>(
    act: (inputs: ReadonlyArray<PolicyInput>) => Effect.Effect<ReadonlyArray<O>, E1, R1>,
    text: (output: O) => string,
    handle: (step: SlotStep<O>) => Effect.Effect<void, E2, R2>
  ): Effect.Effect<void, E1 | E2 | EnvironmentError, R1 | R2> {
    return Effect.gen(this, function*() {
      const slots = this.slots()
      const inputs = slots.map((s) => toInput(this.live.get(s)!.observation))
      const outputs = yield* act(inputs)
      const answers: Array<string | null> = Array.from({ length: this.env.numEnvs }, () => null)
      slots.forEach((s, k) => (answers[s] = text(outputs[k]!)))
      const transitions = yield* this.env.step(answers)
      for (const [k, slot] of slots.entries()) {
        const transition = transitions[slot]
        if (transition === null || transition === undefined) continue
        const { episode } = this.live.get(slot)!
        yield* handle({ slot, episode, input: inputs[k]!, output: outputs[k]!, transition })
        if (transition.terminated || transition.truncated) yield* this.begin(slot)
        else this.live.set(slot, { episode, observation: transition.observation })
      }
    })
  }
}
