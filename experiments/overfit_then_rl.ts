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
import { GENERATIVE_QUICK, generativeLayers, INIT } from "./generative-footing.ts"

export default experiment({
  name: "overfit_then_rl",
  description: "PPO from the SFT initialisation and from an SFT run for many epochs, under absolute and relative directions",
  seeds: [1, 2, 3],
  suites: ["indist", "rule-ood"],
  evaluations: 3,
  klReference: "base",
  layers: generativeLayers,
  arms: [
    { name: "base", recipe: { kind: "pretrain" } },
    { name: "init", recipe: { kind: "sft", from: "base" }, config: INIT },
    { name: "overfit", recipe: { kind: "sft", from: "init" }, config: { "sft_config.epochs": 30 }, quick: { "sft_config.epochs": 4 } },
    { name: "rl", recipe: { kind: "ppo", from: "init" } },
    { name: "rl_overfit", recipe: { kind: "ppo", from: "overfit" } }
  ],
  quick: GENERATIVE_QUICK
})
