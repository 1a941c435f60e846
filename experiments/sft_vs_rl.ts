/**
 * "SFT Memorizes, RL Generalizes" on V-IRL: one SFT initialisation, then either more SFT or
 * PPO, both evaluated in-distribution (NYC, absolute directions), rule-OOD (NYC, relative
 * directions) and visual-OOD (San Francisco) — the paper's Figure and table.
 *
 *   npx virl run experiments/sft_vs_rl.ts            # 2 seeds, about 6 minutes on 2 cores
 *   npx virl run experiments/sft_vs_rl.ts --quick    # 1 seed, fewer routes, epochs and updates
 */
import { experiment } from "../src/core/experiment.ts"

export default experiment({
  name: "sft_vs_rl",
  description: "SFT vs RL (PPO) from the same SFT initialisation, on three evaluation suites",
  seeds: [1, 2],
  suites: ["indist", "rule-ood", "visual-ood"],
  evaluations: 3,
  arms: [
    { name: "init", recipe: { kind: "sft" }, hidden: true, config: { "sft_config.epochs": 10 } },
    { name: "sft", recipe: { kind: "sft", from: "init" }, config: { "sft_config.epochs": 5, "sft_config.init_lr": 1e-3, "sft_config.end_lr": 1e-4 } },
    { name: "rl", recipe: { kind: "ppo", from: "init" } }
  ],
  quick: {
    "sft_config.routes": 64,
    "eval_config.num_traj": 16,
    "eval_config.num_traj_visual": 8,
    num_updates: 5
  }
})
