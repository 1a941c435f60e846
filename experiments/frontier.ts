/**
 * The study's answer along frontiers: SFT, RL (PPO) and RFT from the same format initialisation
 * of a pretrained base, each over the same number of configurations (three learning rates), each
 * configuration evaluated at six points along its run. The report compares the methods' frontiers
 * of OOD against in-distribution accuracy (and OOD at matched KL from the base) with bootstrap
 * intervals over seeds and routes, paired across methods. Every configuration is reported; the one
 * selection rule (highest in-distribution accuracy) is the same for every method and fixed here,
 * before the run. Suites, base and grids: experiments/footing.ts.
 *
 *   npx virl run experiments/frontier.ts            # 5 seeds, 100 routes per suite
 *   npx virl run experiments/frontier.ts --quick    # 1 seed, tiny everything: a pipeline check
 */
import { experiment } from "../src/core/experiment.ts"
import { frontierOf, onFooting, rftMethod, rlMethod, sftMethod, START } from "./footing.ts"

export default experiment(
  onFooting({
    name: "frontier",
    description: "SFT, RL and RFT from one format initialisation, three learning rates each, compared along their OOD-vs-in-distribution frontiers",
    arms: [...START, ...sftMethod(), ...rlMethod(), ...rftMethod()],
    frontier: frontierOf(["sft", "rl", "rft"], {
      compare: [
        ["rl", "sft"],
        ["rft", "sft"],
        ["rl", "rft"]
      ]
    })
  })
)
