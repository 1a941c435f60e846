/**
 * RL without a format teacher (the paper's Fig. 9/20 claim, shown on GeneralPoints: PPO straight from a model that does not
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
import { GENERATIVE_QUICK, generativeLayers, INIT } from "./generative-footing.ts"

export default experiment({
  name: "format_teacher",
  description: "PPO from a base that knows the answer format and from one that does not, with and without the SFT format initialisation",
  seeds: [1, 2, 3],
  suites: ["indist", "rule-ood", "visual-ood"],
  evaluations: 3,
  layers: generativeLayers,
  arms: [
    { name: "base", recipe: { kind: "pretrain" } },
    { name: "plain", recipe: { kind: "pretrain" }, config: { "pretrain_config.answer_format": "sentences" } },
    { name: "init", recipe: { kind: "sft", from: "base" }, config: INIT },
    { name: "init_plain", recipe: { kind: "sft", from: "plain" }, config: INIT },
    { name: "rl_base", recipe: { kind: "ppo", from: "base" } },
    { name: "rl_plain", recipe: { kind: "ppo", from: "plain" } },
    { name: "rl_init", recipe: { kind: "ppo", from: "init" } },
    { name: "rl_init_plain", recipe: { kind: "ppo", from: "init_plain" } }
  ],
  quick: GENERATIVE_QUICK
})
