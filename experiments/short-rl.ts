/**
 * The settings the RL ablations share (process_vs_outcome, verify_iter, custom_reward): a
 * 10-epoch SFT initialisation on 64 routes and 8 PPO updates, so a trial takes minutes; and
 * the smaller `--quick` version of it.
 */
export const SHORT_RL = {
  config: { "sft_config.routes": 64, "sft_config.epochs": 10, num_updates: 8, "eval_config.num_traj": 24, "eval_config.num_traj_visual": 18 },
  quick: { "sft_config.routes": 32, "sft_config.epochs": 6, num_updates: 3, "eval_config.num_traj": 8, "eval_config.num_traj_visual": 6 }
} as const
