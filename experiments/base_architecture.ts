/**
 * Which policy can hold what pretraining teaches: the base model built at three sizes of the tfjs
 * policy (word and state widths, image features), each evaluated on the three suites. The base's
 * accuracy on rule-OOD and visual-OOD is what post-training can keep or lose.
 *
 *   npx virl run experiments/base_architecture.ts
 */
import { experiment } from "../src/core/experiment.ts"

const size = (embedding: number, hidden: number, patchFeatures: number) => ({
  "policy_config.embedding": embedding,
  "policy_config.hidden": hidden,
  "policy_config.patch_features": patchFeatures
})

export default experiment({
  name: "base_architecture",
  description: "the base model at three policy sizes, on the three suites",
  seeds: [1],
  suites: ["indist", "rule-ood", "visual-ood"],
  evaluations: 1,
  arms: [
    { name: "base_small", recipe: { kind: "pretrain" }, config: size(48, 96, 24) },
    { name: "base_default", recipe: { kind: "pretrain" }, config: size(96, 192, 48) },
    { name: "base_large", recipe: { kind: "pretrain" }, config: size(160, 320, 80) }
  ]
})
