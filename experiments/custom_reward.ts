/**
 * A reward written by the user, in a few lines: the paper's process reward, plus a bonus for
 * reaching the destination and a sharper penalty for claiming an intersection that is not there.
 *
 *   npx virl run experiments/custom_reward.ts --quick
 */
import { Layer } from "effect"
import { experiment } from "../src/core/experiment.ts"
import { Reward, Verdict } from "../src/core/reward.ts"
import { processReward } from "../src/plugins/reward/process.ts"
import { SHORT_RL } from "./short-rl.ts"

const shaped = Layer.succeed(Reward, {
  name: "shaped",
  step: (verdict: Verdict) => (Verdict.$is("WrongObservation")(verdict) ? -2 : processReward.step(verdict)),
  episodeEnd: ({ success }) => (success ? 5 : 0)
})

export default experiment({
  name: "custom_reward",
  description: "RL with a user-written reward next to RL with the paper's process reward",
  seeds: [1],
  suites: ["indist", "rule-ood", "visual-ood"],
  evaluations: 2,
  arms: [
    { name: "init", recipe: { kind: "sft" }, hidden: true },
    { name: "rl_process", recipe: { kind: "ppo", from: "init" } },
    { name: "rl_shaped", recipe: { kind: "ppo", from: "init" }, reward: shaped }
  ],
  ...SHORT_RL
})
