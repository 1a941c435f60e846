/**
 * "SFT Memorizes, RL Generalizes" with a policy that writes its answers: the study of
 * sft_vs_rl.ts with the generative policy (a small encoder–decoder transformer that reads the
 * conversation's tokens and the grid image and generates the answer token by token) in place of
 * the policy that chooses among listed answers. Its answers go through the environment's parser
 * and verifier as written, so the suites also count the answers that name no action the parser
 * finds and those naming an action outside the suite's action space (`answers` in each suite's
 * metrics); KL(base ‖ arm) is measured over text, token by token along the base's answers.
 *
 *   npx virl run experiments/sft_vs_rl_generative.ts            # 3 seeds
 *   npx virl run experiments/sft_vs_rl_generative.ts --quick    # 1 seed, a smaller network, fewer routes, updates and episodes
 */
import { experiment } from "../src/core/experiment.ts"
import { GENERATIVE_QUICK, generativeLayers, INIT } from "./generative-footing.ts"

export default experiment({
  name: "sft_vs_rl_generative",
  description: "SFT vs RL (PPO) vs RFT from the same format initialisation, with a policy that writes its answers token by token",
  seeds: [1, 2, 3],
  suites: ["indist", "rule-ood", "visual-ood"],
  evaluations: 3,
  klReference: "base",
  layers: generativeLayers,
  arms: [
    { name: "base", recipe: { kind: "pretrain" } },
    { name: "init", recipe: { kind: "sft", from: "base" }, config: INIT },
    { name: "sft", recipe: { kind: "sft", from: "init" }, config: { "sft_config.epochs": 7 }, quick: { "sft_config.epochs": 2 } },
    { name: "rl", recipe: { kind: "ppo", from: "init" } },
    { name: "rft", recipe: { kind: "rft", from: "init", samples: "base" } }
  ],
  quick: GENERATIVE_QUICK
})
