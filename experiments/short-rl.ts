import { experiment } from "../src/core/experiment.ts"

/**
 * The settings the whole-pipeline swaps share (optimizer_ablation, policy_size — they change the
 * SFT initialisation too, so they start from scratch, not from the study's base): a 10-epoch SFT
 * initialisation on 64 routes and 8 PPO updates, so a trial takes minutes; and the smaller
 * `--quick` version of it.
 */
export const SHORT_RL = {
  config: { "sft_config.routes": 64, "sft_config.epochs": 10, num_updates: 8, "eval_config.num_traj": 24, "eval_config.num_traj_visual": 18 },
  quick: { "sft_config.routes": 32, "sft_config.epochs": 6, num_updates: 3, "eval_config.num_traj": 8, "eval_config.num_traj_visual": 6 }
} as const

/**
 * The experiment those ablations sweep over: an SFT initialisation (`init`, left out of the
 * table when `hideInit`) and the RL arm trained from it, on the paper's three suites, one seed.
 */
export const shortRlExperiment = (name: string, options: { readonly hideInit?: boolean } = {}) =>
  experiment({
    name,
    seeds: [1],
    suites: ["indist", "rule-ood", "visual-ood"],
    evaluations: 2,
    arms: [
      { name: "init", recipe: { kind: "sft" }, ...(options.hideInit === true ? { hidden: true } : {}) },
      { name: "rl", recipe: { kind: "ppo", from: "init" } }
    ],
    ...SHORT_RL
  })
