/**
 * RL from an over-fitted SFT checkpoint, evaluated under rules it was not trained on (the paper's
 * §6 finding: RL cannot recover an over-fitted SFT model; under relative directions it keeps
 * answering in absolute ones). The generative policy, because only a policy that writes its
 * answers can answer `turn_direction(northwest)` where the action space has no such action: the
 * rule-OOD suite's `answers.outside_action_space` counts exactly that.
 *
 *   npx virl run experiments/overfit_then_rl.ts            # 3 seeds
 *   npx virl run experiments/overfit_then_rl.ts --quick    # the pipeline on 2 cores
 */
import { experiment } from "../src/core/experiment.ts"
import * as Generative from "../src/plugins/policy/generative/layer.ts"

export default experiment({
  name: "overfit_then_rl",
  description: "PPO from the SFT initialisation and from an SFT run for many epochs, under absolute and relative directions",
  seeds: [1, 2, 3],
  suites: ["indist", "rule-ood"],
  evaluations: 3,
  klReference: "base",
  layers: { policy: Generative.layer() },
  arms: [
    { name: "base", recipe: { kind: "pretrain" } },
    { name: "init", recipe: { kind: "sft", from: "base" }, config: { "sft_config.epochs": 1, "sft_config.init_lr": 3e-4, "sft_config.end_lr": 3e-5 } },
    { name: "overfit", recipe: { kind: "sft", from: "init" }, config: { "sft_config.epochs": 30 }, quick: { "sft_config.epochs": 4 } },
    { name: "rl", recipe: { kind: "ppo", from: "init" } },
    { name: "rl_overfit", recipe: { kind: "ppo", from: "overfit" } }
  ],
  quick: {
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
})
