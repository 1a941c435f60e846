/**
 * AdamW (the default) against SGD with momentum (src/plugins/optimizer/sgd.ts) for the whole
 * pipeline — the SFT initialisation and the RL arm — at learning rates of each one's own scale.
 *
 *   npx virl sweep experiments/optimizer_ablation.ts --quick
 */
import { sweep } from "../src/core/experiment.ts"
import * as AdamW from "../src/plugins/optimizer/adamw.ts"
import * as Sgd from "../src/plugins/optimizer/sgd.ts"
import { shortRlExperiment } from "./short-rl.ts"

const base = shortRlExperiment("optimizer")

export default sweep({
  name: "optimizer_ablation",
  description: "AdamW vs SGD with momentum (0.9), each at learning rates of its own scale (SGD's 30× Adam's)",
  base,
  compare: "rl",
  grid: {
    optimizer: [
      { label: "adamw", layers: { optimizer: AdamW.layer } },
      {
        label: "sgd",
        layers: { optimizer: Sgd.layer },
        config: { "sft_config.init_lr": 9e-2, "sft_config.end_lr": 9e-3, "optimizer_config.init_lr": 9e-3, "optimizer_config.end_lr": 9e-4 }
      }
    ]
  }
})
