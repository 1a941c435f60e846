import { Layer } from "effect"
import { Reward, type RewardFunction } from "../../core/reward.ts"

/**
 * Paid only when an episode ends: +1 for reaching the destination, −1 otherwise; every answer
 * before that earns 0. The sparse alternative to the paper's per-step process reward.
 */
export const outcomeReward: RewardFunction = {
  name: "outcome",
  step: () => 0,
  episodeEnd: ({ success }) => (success ? 1 : -1)
}

export const layer = Layer.succeed(Reward, outcomeReward)
