/**
 * The study's answer along frontiers: SFT, PPO with the reference's per-answer reward (the
 * paper's: the verifier scores every answer), PPO with a reward paid only at the episode's end
 * (arriving), and RFT, all from one format initialisation of each of three pretrained bases, three
 * learning rates each (the same tuning budget), each configuration evaluated at six points along
 * its run, in per-step accuracy and success rate. Points and configurations are chosen on
 * validation routes; the paper's claims are tested as one Holm-corrected family, each in the
 * paper's own metric. Suites, bases and grids: experiments/footing.ts. docs/frontier.md.
 *
 *   npx virl run experiments/frontier.ts            # 3 bases × 3 seeds, 100 routes per suite
 *   npx virl run experiments/frontier.ts --quick    # 2 bases × 1 seed, tiny everything: a pipeline check
 */
import { experiment, type FrontierClaim } from "../src/core/experiment.ts"
import * as Outcome from "../src/plugins/reward/outcome.ts"
import * as Process from "../src/plugins/reward/process.ts"
import { frontierOf, onFooting, rftMethod, rlMethod, sftMethod, START } from "./footing.ts"

const RULE = "Fig. 6 (V-IRL-VL, rule variants, per-step accuracy)"
const VISUAL = "Fig. 7 (V-IRL-VL, visual variants: VLN mini success rate)"
const RL = ["ppo-process", "ppo-outcome"] as const

/** The paper's V-IRL-VL claims, each in the metric the paper reports it in. */
const CLAIMS: ReadonlyArray<FrontierClaim> = [
  ...RL.map((m): FrontierClaim => ({
    claim: `RL (${m}) raises rule-OOD above its start`,
    paper: `${RULE}: init 35.7 → RL 45.0`,
    metric: "step",
    suite: "rule-ood",
    test: { gain: m }
  })),
  {
    claim: "SFT lowers rule-OOD below its start",
    paper: `${RULE}: init 35.7 → SFT 2.5`,
    metric: "step",
    suite: "rule-ood",
    test: { gain: "sft" },
    direction: "down"
  },
  ...RL.map((m): FrontierClaim => ({
    claim: `RL (${m}) raises visual-OOD success above its start`,
    paper: `${VISUAL}: init 16.7 → RL 77.8`,
    metric: "success",
    suite: "visual-ood",
    test: { gain: m }
  })),
  {
    claim: "SFT lowers visual-OOD success below its start",
    paper: `${VISUAL}: init 16.7 → SFT 11.1`,
    metric: "success",
    suite: "visual-ood",
    test: { gain: "sft" },
    direction: "down"
  },
  ...RL.map((m): FrontierClaim => ({
    claim: `RL (${m}) ahead of SFT on rule-OOD`,
    paper: `${RULE}: 45.0 vs 2.5`,
    metric: "step",
    suite: "rule-ood",
    test: { difference: [m, "sft"] }
  })),
  ...RL.map((m): FrontierClaim => ({
    claim: `RL (${m}) ahead of SFT on visual-OOD success`,
    paper: `${VISUAL}: 77.8 vs 11.1`,
    metric: "success",
    suite: "visual-ood",
    test: { difference: [m, "sft"] }
  }))
]

export default experiment(
  onFooting({
    name: "frontier",
    description:
      "SFT, PPO (per-answer reward), PPO (episode-end reward) and RFT from one format initialisation of three bases, three learning rates each, compared along their frontiers in per-step accuracy and success",
    arms: [
      ...START,
      ...sftMethod(),
      ...rlMethod("ppo-process", { layers: { reward: Process.layer } }),
      ...rlMethod("ppo-outcome", { layers: { reward: Outcome.layer } }),
      ...rftMethod()
    ],
    frontier: frontierOf(["sft", "ppo-process", "ppo-outcome", "rft"], {
      compare: [
        ["ppo-process", "sft"],
        ["ppo-outcome", "sft"],
        ["rft", "sft"],
        ["ppo-outcome", "ppo-process"]
      ],
      claims: CLAIMS
    })
  })
)
