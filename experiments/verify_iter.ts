/**
 * How many attempts the environment allows at each waypoint (verify_iter: 1, 2, 3), for the
 * SFT initialisation and the RL arm trained from it.
 *
 *   npx virl sweep experiments/verify_iter.ts
 */
import { experiment, sweep } from "../src/core/experiment.ts"

const base = experiment({
  name: "verify_iter",
  seeds: [1],
  suites: ["indist", "rule-ood", "visual-ood"],
  evaluations: 2,
  arms: [
    { name: "init", recipe: { kind: "sft" } },
    { name: "rl", recipe: { kind: "ppo", from: "init" } }
  ],
  config: { "sft_config.routes": 64, "sft_config.epochs": 10, num_updates: 8, "eval_config.num_traj": 24, "eval_config.num_traj_visual": 18 },
  quick: { "sft_config.routes": 32, "sft_config.epochs": 6, num_updates: 3, "eval_config.num_traj": 8, "eval_config.num_traj_visual": 6 }
})

export default sweep({
  name: "verify_iter",
  description: "attempts per waypoint: 1, 2 (the paper's), 3",
  base,
  compare: "rl",
  grid: {
    verify_iter: [1, 2, 3].map((n) => ({ label: String(n), config: { "env_config.verify_iter": n } }))
  }
})
