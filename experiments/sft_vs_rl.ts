/**
 * "SFT Memorizes, RL Generalizes" on V-IRL, from a pretrained base: the base model (pretrained on
 * a broad mixture of city styles and both rule sets), a short SFT on NYC with absolute
 * directions (the paper's format initialisation, `init`), then more SFT (`sft`), PPO (`rl`) or
 * rejection-sampling fine-tuning on the policy's own correct outputs (`rft`, the control),
 * evaluated in-distribution (NYC, absolute directions), rule-OOD (NYC, relative directions) and
 * visual-OOD (San Francisco), with KL(base ‖ arm) measured along the way (RL's Razor).
 *
 *   npx virl run experiments/sft_vs_rl.ts            # 3 seeds
 *   npx virl run experiments/sft_vs_rl.ts --quick    # 1 seed, fewer routes, updates and episodes
 */
import { experiment } from "../src/core/experiment.ts"

export default experiment({
  name: "sft_vs_rl",
  description: "SFT vs RL (PPO) vs RFT from the same format initialisation of a pretrained base, on three evaluation suites",
  seeds: [1, 2, 3],
  suites: ["indist", "rule-ood", "visual-ood"],
  evaluations: 3,
  klReference: "base",
  arms: [
    { name: "base", recipe: { kind: "pretrain" } },
    // the format initialisation: one epoch at the rate best in-distribution for it (experiments/init_tuning.ts)
    { name: "init", recipe: { kind: "sft", from: "base" }, config: { "sft_config.epochs": 1, "sft_config.init_lr": 3e-4, "sft_config.end_lr": 3e-5 } },
    { name: "sft", recipe: { kind: "sft", from: "init" }, config: { "sft_config.epochs": 7 } },
    { name: "rl", recipe: { kind: "ppo", from: "init" } },
    { name: "rft", recipe: { kind: "rft", from: "init", samples: "base" } }
  ],
  // a pipeline check: a small base of its own (cached apart from the full one), one seed, fewer of everything
  quick: {
    "pretrain_config.styles": 4,
    "pretrain_config.routes": 12,
    "pretrain_config.epochs": 4,
    "sft_config.routes": 64,
    "eval_config.num_traj": 16,
    "eval_config.num_traj_visual": 8,
    "kl_config.routes": 8,
    num_updates: 5
  }
})
