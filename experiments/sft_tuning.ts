/**
 * SFT's settings for sft_vs_rl, chosen fairly: the learning rate of SFT (the format
 * initialisation and the SFT arm alike) at three values, and the SFT arm at two lengths (7
 * epochs match PPO's gradient samples), judged by in-distribution accuracy alone.
 * sft_vs_rl uses the best.
 *
 *   npx virl sweep experiments/sft_tuning.ts --parallel 2
 */
import { experiment, sweep } from "../src/core/experiment.ts"
import study from "./sft_vs_rl.ts"

const base = experiment({
  name: "sft_tuning",
  seeds: [1, 2],
  suites: ["indist", "rule-ood", "visual-ood"],
  evaluations: 1,
  arms: [
    ...study.arms.filter((a) => a.name === "base" || a.name === "init"),
    { name: "sft_e3", recipe: { kind: "sft", from: "init" }, config: { "sft_config.epochs": 3 } },
    { name: "sft_e7", recipe: { kind: "sft", from: "init" }, config: { "sft_config.epochs": 7 } }
  ],
  ...(study.quick === undefined ? {} : { quick: study.quick })
})

export default sweep({
  name: "sft_tuning",
  description: "SFT learning rate (init and SFT arm) and SFT length, judged in-distribution",
  base,
  compare: "sft_e7",
  grid: {
    lr: [3e-4, 1e-3, 3e-3].map((lr) => ({ label: String(lr), config: { "sft_config.init_lr": lr, "sft_config.end_lr": lr / 10 } }))
  }
})
