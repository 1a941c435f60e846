import { Context, Data } from "effect"

/**
 * What the verifier concluded about one answer. The environment's transition depends only on
 * this (advance on `Correct`, retry otherwise, forced advance on `Exhausted`); a `Reward`
 * layer turns verdicts and episode outcomes into numbers.
 */
export type Verdict = Data.TaggedEnum<{
  /** The action equals the ground truth. */
  Correct: {}
  /** A wrong action, with an observation that does not contradict the ground truth. */
  WrongAction: { readonly parsed: boolean }
  /** A wrong action whose observation claims an intersection where there is none, or the converse. */
  WrongObservation: { readonly claimedIntersection: boolean; readonly parsed: boolean }
  /** A wrong instruction; the reference defines its value but never awards it (spec §7). */
  WrongInstruction: { readonly parsed: boolean }
  /** The rail point's attempts (`verify_iter`) were used up before this answer was read. */
  Exhausted: {}
}>
export const Verdict = Data.taggedEnum<Verdict>()

export interface EpisodeOutcome {
  readonly success: boolean
  /** Answers given in the episode, retries included. */
  readonly steps: number
}

export interface RewardFunction {
  readonly name: string
  /** The reward for one answer. */
  readonly step: (verdict: Verdict) => number
  /** Added to the last step's reward when an episode ends. */
  readonly episodeEnd: (outcome: EpisodeOutcome) => number
}

export class Reward extends Context.Tag("virl/Reward")<Reward, RewardFunction>() {}
