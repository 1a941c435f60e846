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

const RL = ["ppo-process", "ppo-outcome"] as const

/**
 * One of the paper's V-IRL-VL results: the figure, the metric it is reported in, our suite and
 * what is said of it ("rule-OOD", "visual-OOD success"), and its numbers (init → RL, → SFT).
 */
interface PaperResult {
  readonly figure: string
  readonly metric: FrontierClaim["metric"]
  readonly suite: string
  readonly what: string
  readonly init: string
  readonly rl: string
  readonly sft: string
}

const RULE: PaperResult = {
  figure: "Fig. 6 (V-IRL-VL, rule variants, per-step accuracy)",
  metric: "step",
  suite: "rule-ood",
  what: "rule-OOD",
  init: "35.7",
  rl: "45.0",
  sft: "2.5"
}
const VISUAL: PaperResult = {
  figure: "Fig. 7 (V-IRL-VL, visual variants: VLN mini success rate)",
  metric: "success",
  suite: "visual-ood",
  what: "visual-OOD success",
  init: "16.7",
  rl: "77.8",
  sft: "11.1"
}

const on = (r: PaperResult) => ({ metric: r.metric, suite: r.suite })
/** Each RL method raises the result above the start. */
const rlRaises = (r: PaperResult): FrontierClaim[] =>
  RL.map((m) => ({ claim: `RL (${m}) raises ${r.what} above its start`, paper: `${r.figure}: init ${r.init} → RL ${r.rl}`, ...on(r), test: { gain: m } }))
/** SFT lowers the result below the start. */
const sftLowers = (r: PaperResult): FrontierClaim => ({
  claim: `SFT lowers ${r.what} below its start`,
  paper: `${r.figure}: init ${r.init} → SFT ${r.sft}`,
  ...on(r),
  test: { gain: "sft" },
  direction: "down"
})
/** Each RL method ahead of SFT on the result. */
const rlAhead = (r: PaperResult): FrontierClaim[] =>
  RL.map((m) => ({ claim: `RL (${m}) ahead of SFT on ${r.what}`, paper: `${r.figure}: ${r.rl} vs ${r.sft}`, ...on(r), test: { difference: [m, "sft"] } }))

/** The paper's V-IRL-VL claims, each in the metric the paper reports it in. */
const CLAIMS: ReadonlyArray<FrontierClaim> = [...rlRaises(RULE), sftLowers(RULE), ...rlRaises(VISUAL), sftLowers(VISUAL), ...rlAhead(RULE), ...rlAhead(VISUAL)]

/** The four methods compared along their frontiers, and the paper's claims tested on them (frontier_generative.ts's too). */
export const FRONTIER = frontierOf(["sft", "ppo-process", "ppo-outcome", "rft"], {
  compare: [
    ["ppo-process", "sft"],
    ["ppo-outcome", "sft"],
    ["rft", "sft"],
    ["ppo-outcome", "ppo-process"]
  ],
  claims: CLAIMS
})

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
    frontier: FRONTIER
  })
)
