/**
 * What the experiments of the generative policy share: its layer, the SFT initialisation's
 * settings (sft_vs_rl.ts's) and the `--quick` sizes that run them on 2 cores as pipeline checks.
 */
import * as Generative from "../src/plugins/policy/generative/layer.ts"

export const generativeLayers = { policy: Generative.layer() }

/** The format initialisation: one epoch of SFT at a low rate. */
export const INIT = { "sft_config.epochs": 1, "sft_config.init_lr": 3e-4, "sft_config.end_lr": 3e-5 }

/** A narrower network reading fewer tokens, a small base, one seed, few episodes and updates. */
export const GENERATIVE_QUICK = {
  "policy_config.width": 32,
  "policy_config.heads": 2,
  "policy_config.decoder_layers": 1,
  "policy_config.prompt_tokens": 256,
  "policy_config.image_side": 16,
  "pretrain_config.styles": 2,
  "pretrain_config.routes": 6,
  "pretrain_config.epochs": 3,
  // a generator needs many small steps more than a few large ones
  "pretrain_config.batch_size": 16,
  "sft_config.batch_size": 16,
  "sft_config.routes": 12,
  "eval_config.num_traj": 4,
  "eval_config.num_traj_visual": 2,
  "kl_config.routes": 2,
  num_steps: 32,
  num_updates: 2
}
