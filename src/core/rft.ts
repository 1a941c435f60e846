import { Effect } from "effect"
import type { OptimizerService } from "./optimizer.ts"
import type { Learner } from "./policy.ts"
import type { Rng } from "./random.ts"
import type { Rollout } from "./rollout.ts"
import { sftTrain } from "./sft.ts"

/**
 * Rejection-sampling fine-tuning's update (RFT): of a rollout — written by the policy being
 * trained or by a fixed sampler — keep the outputs the environment verified as correct, and
 * train on them as SFT does (cross-entropy on the whole output), `epochs` passes in mini-batches
 * of `batchSize`. No negative gradient: a wrong output is dropped, never pushed down. With the
 * base as sampler this is the practical form of RL's Razor's "oracle SFT".
 */
export interface RftConfig {
  readonly epochs: number
  readonly batchSize: number
  /** The sampling temperature the learner scores outputs at. */
  readonly temperature: number
}

export interface RftStats {
  /** Outputs kept (verified correct, and writable by the learner). */
  readonly kept: number
  readonly loss: number | null
  readonly learningRate: number | null
}

export const rftUpdate = (config: RftConfig, rollout: Rollout, learner: Learner, optimizer: OptimizerService, rng: Rng) =>
  Effect.gen(function*() {
    const kept = rollout.texts.flatMap((text, i) => {
      if (!rollout.correct[i]) return []
      const sample = learner.teacher(rollout.inputs[i]!, text)
      return sample === undefined ? [] : [sample]
    })
    if (kept.length === 0) return { kept: 0, loss: null, learningRate: null } satisfies RftStats
    const history = yield* sftTrain(learner, optimizer, kept, { epochs: config.epochs, batch_size: config.batchSize, passes: 1 }, rng, {
      temperature: config.temperature
    })
    return { kept: kept.length, loss: history.at(-1)?.loss ?? null, learningRate: history.at(-1)?.learningRate ?? null } satisfies RftStats
  })
