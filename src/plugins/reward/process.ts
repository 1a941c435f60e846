import { Layer } from "effect"
import { Reward, type RewardFunction, Verdict } from "../../core/reward.ts"

/** The reference's `REWARD_FN_VIRL` values, paid at every answer (spec §6–7). */
export const PROCESS_REWARDS = {
  CORRECT_ACTION: 1,
  INCORRECT_ACTION: -1,
  INCORRECT_OBS: -1.5,
  INCORRECT_INSTRUCTION: -1.75
} as const

/** The reward of a forced end after the attempts at a rail point ran out. */
export const EXHAUSTED_REWARD = -1

export const processReward: RewardFunction = {
  name: "process",
  step: Verdict.$match({
    Correct: () => PROCESS_REWARDS.CORRECT_ACTION,
    WrongAction: () => PROCESS_REWARDS.INCORRECT_ACTION,
    WrongObservation: () => PROCESS_REWARDS.INCORRECT_OBS,
    WrongInstruction: () => PROCESS_REWARDS.INCORRECT_INSTRUCTION,
    Exhausted: () => EXHAUSTED_REWARD
  }),
  episodeEnd: () => 0
}

export const layer = Layer.succeed(Reward, processReward)
