/**
 * The format initialisation's learning rate for sft_vs_rl, chosen by in-distribution accuracy
 * alone (stage 1 of 2; experiments/sft_tuning.ts is stage 2): one epoch of SFT from the base at
 * three rates (the SFT arms that continue each are shown too). OOD numbers are reported, never
 * used to choose.
 *
 *   npx virl sweep experiments/init_tuning.ts --parallel 2
 */
import { experiment, sweep } from "../src/core/experiment.ts"
import study from "./sft_vs_rl.ts"

const base = experiment({
  name: "init_tuning",
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
  name: "init_tuning",
  description: "the format initialisation's learning rate (and SFT continuing at the same rate), judged in-distribution",
  base,
  compare: "init",
  grid: {
    lr: [3e-4, 1e-3, 3e-3].map((lr) => ({ label: String(lr), config: { "sft_config.init_lr": lr, "sft_config.end_lr": lr / 10 } }))
  }
})
