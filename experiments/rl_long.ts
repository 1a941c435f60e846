/**
 * Does RL keep learning past the frontier study's 20 updates? PPO from the study's start at its
 * middle learning rate for 60 updates (the rate decaying over all of them), evaluated at six
 * points on the study's suites (experiments/footing.ts).
 *
 *   npx virl run experiments/rl_long.ts
 */
import { experiment } from "../src/core/experiment.ts"
import { onFooting, START } from "./footing.ts"

export default experiment(
  onFooting({
    name: "rl_long",
    description: "PPO from the frontier study's start for 60 updates",
    arms: [
      ...START,
      {
        name: "rl_long",
        recipe: { kind: "ppo", from: "init" },
        config: { num_updates: 60, "optimizer_config.init_lr": 3e-4, "optimizer_config.end_lr": 3e-5, "optimizer_config.lr_max_steps": 60 * 32 },
        quick: { num_updates: 6 }
      }
    ]
  })
)
