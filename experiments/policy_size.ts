/**
 * A policy swap: the tfjs vision-language policy at its default size (0.68M parameters) and at
 * half its widths, for the SFT initialisation and the RL arm trained from it.
 *
 *   npx virl sweep experiments/policy_size.ts --quick
 */
import { experiment, sweep } from "../src/core/experiment.ts"
import * as TfPolicy from "../src/plugins/policy/tfjs/layer.ts"
import { SHORT_RL } from "./short-rl.ts"

const base = experiment({
  name: "policy",
  seeds: [1],
  suites: ["indist", "rule-ood", "visual-ood"],
  evaluations: 2,
  arms: [
    { name: "init", recipe: { kind: "sft" } },
    { name: "rl", recipe: { kind: "ppo", from: "init" } }
  ],
  ...SHORT_RL
})

export default sweep({
  name: "policy_size",
  description: "the tfjs policy at its default widths and at half of them",
  base,
  compare: "rl",
  grid: {
    policy: [
      { label: "default", layers: { policy: TfPolicy.layer() } },
      { label: "half", layers: { policy: TfPolicy.layer({ embedding: 48, hidden: 96, patch_features: 24 }) } }
    ]
  }
})
