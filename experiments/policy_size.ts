/**
 * A policy swap: the tfjs vision-language policy at its default size (0.68M parameters) and at
 * half its widths, for the SFT initialisation and the RL arm trained from it.
 *
 *   npx virl sweep experiments/policy_size.ts --quick
 */
import { sweep } from "../src/core/experiment.ts"
import * as TfPolicy from "../src/plugins/policy/tfjs/layer.ts"
import { shortRlExperiment } from "./short-rl.ts"

const base = shortRlExperiment("policy")

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
