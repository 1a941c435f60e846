/**
 * A reward written by the user, in a few lines: the paper's process reward, plus a bonus for
 * reaching the destination and a sharper penalty for claiming an intersection that is not there;
 * RL with it against RL with the process reward, from the study's start and compared along
 * frontiers (experiments/footing.ts).
 *
 *   npx virl run experiments/custom_reward.ts --quick
 */
import { Layer } from "effect"
import { experiment } from "../src/core/experiment.ts"
import { Reward, Verdict } from "../src/core/reward.ts"
import * as Process from "../src/plugins/reward/process.ts"
import { processReward } from "../src/plugins/reward/process.ts"
import { frontierOf, onFooting, rlMethod, START } from "./footing.ts"

const shaped = Layer.succeed(Reward, {
  name: "shaped",
  step: (verdict: Verdict) => (Verdict.$is("WrongObservation")(verdict) ? -2 : processReward.step(verdict)),
  episodeEnd: ({ success }) => (success ? 5 : 0)
})

export default experiment(
  onFooting({
    name: "custom_reward",
    description: "RL with a user-written reward next to RL with the paper's process reward, along frontiers",
    arms: [...START, ...rlMethod("process", { layers: { reward: Process.layer } }), ...rlMethod("shaped", { layers: { reward: shaped } })],
    frontier: frontierOf(["process", "shaped"])
  })
)
