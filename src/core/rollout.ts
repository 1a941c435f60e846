import { Effect } from "effect"
import { EnvironmentError, type EnvironmentSnapshot, type StepInfoRecord, type VectorEnvironment } from "./environment.ts"
import { EpisodeSlots } from "./episodes.ts"
import type { ActOptions, PolicyInput, PolicyService, Sample } from "./policy.ts"

/** `num_steps` transitions across episode boundaries, as PPO consumes them. */
export interface Rollout {
  readonly samples: ReadonlyArray<Sample>
  readonly logProbs: ReadonlyArray<number>
  readonly values: ReadonlyArray<number>
  readonly rewards: ReadonlyArray<number>
  /** Whether the environment verified each output as correct. */
  readonly correct: ReadonlyArray<boolean>
  /** What the policy was shown and what it wrote at each step (to teach another learner the same output). */
  readonly inputs: ReadonlyArray<PolicyInput>
  readonly texts: ReadonlyArray<string>
  /** 0 where an episode ended at this step (see `use_proper_time_limits`). */
  readonly masks: ReadonlyArray<number>
  /** The steps of each environment slot, laid end to end: [start, end) and the value after the end. */
  readonly segments: ReadonlyArray<{ readonly start: number; readonly end: number; readonly nextValue: number }>
  readonly episodes: ReadonlyArray<EpisodeSummary>
  /** Share of steps whose verdict was correct (reward 1 under the process reward). */
  readonly correctSteps: number
}

export interface EpisodeSummary {
  readonly reward: number
  readonly steps: number
  readonly success: boolean
}

/** Where a collector stands between rollouts: the environments and each slot's running episode totals. */
export interface CollectorState {
  readonly started: boolean
  readonly running: ReadonlyArray<{ readonly reward: number; readonly steps: number }>
  readonly environment: EnvironmentSnapshot | null
}

/**
 * Keeps N episodes running in lock-step on the episode scheduler (an endless queue, routes drawn
 * by the environment): one batched policy call per step, a finished slot restarts at once. The
 * state survives between rollouts, as in the reference, so episodes span updates.
 */
export class RolloutCollector {
  private readonly slots: EpisodeSlots
  private running: Array<{ reward: number; steps: number }> = []

  constructor(
    private readonly env: VectorEnvironment<StepInfoRecord>,
    private readonly policy: PolicyService,
    private readonly options: { readonly properTimeLimits: boolean; readonly act: ActOptions }
  ) {
    this.slots = new EpisodeSlots(env, { episodes: Infinity })
  }

  private start = Effect.suspend(() =>
    this.slots.busy
      ? Effect.void
      : this.slots.fill().pipe(Effect.tap(() => Effect.sync(() => (this.running = Array.from({ length: this.env.numEnvs }, () => ({ reward: 0, steps: 0 }))))))
  )

  /** Its state for a checkpoint: with it, `restore` continues the next rollout exactly. */
  state(): CollectorState {
    const started = this.slots.busy
    return { started, running: this.running.map((r) => ({ ...r })), environment: started ? this.env.snapshot() : null }
  }

  restore(state: CollectorState) {
    return Effect.gen(this, function*() {
      if (!state.started || state.environment === null) {
        this.slots.resume([], 0)
        this.running = []
        return
      }
      const observations = yield* this.env.restore(state.environment)
      for (const [slot, o] of observations.entries()) {
        // the collector restarts an ended slot at once, so every slot it saved was live
        if (o === null) return yield* new EnvironmentError({ slot, message: "cannot restore the rollout: a saved episode had ended" })
      }
      if (state.running.length !== observations.length) {
        return yield* new EnvironmentError({
          slot: -1,
          message: `cannot restore the rollout: ${state.running.length} running totals for ${observations.length} environments`
        })
      }
      this.slots.resume(observations, 0)
      this.running = state.running.map((r) => ({ ...r }))
    })
  }

  /** Collects `numSteps` transitions (rounded up to a multiple of the number of environments). */
  collect(numSteps: number) {
    return Effect.gen(this, function*() {
      yield* this.start
      const n = this.env.numEnvs
      const per = Array.from({ length: n }, () => ({
        samples: [] as Sample[],
        logProbs: [] as number[],
        values: [] as number[],
        rewards: [] as number[],
        correct: [] as boolean[],
        inputs: [] as PolicyInput[],
        texts: [] as string[],
        masks: [] as number[]
      }))
      const episodes: EpisodeSummary[] = []
      let correctCount = 0
      let total = 0
      for (let t = 0; t < Math.ceil(numSteps / n); t++) {
        yield* this.slots.step(
          (inputs) => this.policy.act(inputs, this.options.act),
          (o) => o.text,
          ({ slot, input, output: out, transition: tr }) =>
            Effect.sync(() => {
              if (out.sample === undefined) return
              per[slot].samples.push(out.sample)
              per[slot].logProbs.push(out.logProb)
              per[slot].values.push(out.value)
              per[slot].rewards.push(tr.reward)
              per[slot].correct.push(tr.verdict._tag === "Correct")
              per[slot].inputs.push(input)
              per[slot].texts.push(out.text)
              per[slot].masks.push(tr.terminated || (this.options.properTimeLimits && tr.truncated) ? 0 : 1)
              total++
              if (tr.verdict._tag === "Correct") correctCount++
              this.running[slot].reward += tr.reward
              this.running[slot].steps += 1
              if (tr.terminated || tr.truncated) {
                episodes.push({ ...this.running[slot], success: tr.observation.info["is_success"] === true })
                this.running[slot] = { reward: 0, steps: 0 }
              }
            })
        )
      }
      const bootstrap = yield* this.policy.act(this.slots.inputs(), this.options.act)
      const samples: Sample[] = []
      const logProbs: number[] = []
      const values: number[] = []
      const rewards: number[] = []
      const correct: boolean[] = []
      const inputs: PolicyInput[] = []
      const texts: string[] = []
      const masks: number[] = []
      const segments: Array<{ start: number; end: number; nextValue: number }> = []
      per.forEach((p, slot) => {
        segments.push({ start: samples.length, end: samples.length + p.samples.length, nextValue: bootstrap[slot].value })
        samples.push(...p.samples)
        logProbs.push(...p.logProbs)
        values.push(...p.values)
        rewards.push(...p.rewards)
        correct.push(...p.correct)
        inputs.push(...p.inputs)
        texts.push(...p.texts)
        masks.push(...p.masks)
      })
      return {
        samples,
        logProbs,
        values,
        rewards,
        correct,
        inputs,
        texts,
        masks,
        segments,
        episodes,
        correctSteps: total === 0 ? 0 : correctCount / total
      } satisfies Rollout
    })
  }
}
