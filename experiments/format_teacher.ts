/**
 * RL without a format teacher (the paper's Fig. 8 claim: PPO straight from a model that does not
 * answer in the task's format does not learn; the SFT initialisation teaches the format first).
 * Two bases of the generative policy, pretrained on the same mixture: `base` answers in the
 * task's JSON, `plain` in plain sentences (pretrain_config.answer_format), so the environment's
 * parser finds no action in what it writes. PPO from each base directly, and from each after
 * the one-epoch SFT initialisation; the suites count unparsable answers beside the accuracies.
 *
 *   npx virl run experiments/format_teacher.ts            # 3 seeds
 *   npx virl run experiments/format_teacher.ts --quick    # the pipeline on 2 cores
 */
import { experiment } from "../src/core/experiment.ts"
import * as Generative from "../src/plugins/policy/generative/layer.ts"

const init = { "sft_config.epochs": 1, "sft_config.init_lr": 3e-4, "sft_config.end_lr": 3e-5 }

export default experiment({
  name: "format_teacher",
  description: "PPO from a base that knows the answer format and from one that does not, with and without the SFT format initialisation",
  seeds: [1, 2, 3],
  suites: ["indist", "rule-ood", "visual-ood"],
  evaluations: 3,
  layers: { policy: Generative.layer() },
  arms: [
    { name: "base", recipe: { kind: "pretrain" } },
    { name: "plain", recipe: { kind: "pretrain" }, config: { "pretrain_config.answer_format": "sentences" } },
    { name: "init", recipe: { kind: "sft", from: "base" }, config: init },
    { name: "init_plain", recipe: { kind: "sft", from: "plain" }, config: init },
    { name: "rl_base", recipe: { kind: "ppo", from: "base" } },
    { name: "rl_plain", recipe: { kind: "ppo", from: "plain" } },
    { name: "rl_init", recipe: { kind: "ppo", from: "init" } },
    { name: "rl_init_plain", recipe: { kind: "ppo", from: "init_plain" } }
  ],
  // the pipeline on 2 cores: the quick network and data of sft_vs_rl_generative.ts
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
