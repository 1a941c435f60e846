/**
 * RL's Razor's condition, tested: the same study from a base pretrained to describe every
 * observation in the environment's one text (`pretrain_config.descriptions: oracle`) instead of in
 * several correct ways. Then SFT's labels and the base agree on the free parts of the answer, and
 * only the action is left for the arms to differ on.
 *
 *   npx virl run experiments/razor_condition.ts
 */
import { experiment } from "../src/core/experiment.ts"
import study from "./sft_vs_rl.ts"

export default experiment({
  ...study,
  name: "razor_condition",
  description: "sft_vs_rl from a base that writes one fixed observation text",
  config: { ...study.config, "pretrain_config.descriptions": "oracle" }
})
