/**
 * The SFT arm's settings for sft_vs_rl, chosen by in-distribution accuracy alone (stage 2 of 2;
 * experiments/init_tuning.ts chose the initialisation): from sft_vs_rl's own `init`, SFT at three
 * learning rates for 3 epochs and for 7 (PPO's gradient samples). OOD numbers are reported, never
 * used to choose.
 *
 *   npx virl run experiments/sft_tuning.ts
 */
import { type Arm, experiment } from "../src/core/experiment.ts"
import study from "./sft_vs_rl.ts"

const candidates: Arm[] = [3e-4, 1e-3, 3e-3].flatMap((lr) =>
  [3, 7].map((epochs) => ({
    name: `sft_lr${lr}_e${epochs}`,
    recipe: { kind: "sft", from: "init" },
    config: { "sft_config.epochs": epochs, "sft_config.init_lr": lr, "sft_config.end_lr": lr / 10 }
  }))
)

export default experiment({
  name: "sft_tuning",
  description: "the SFT arm's learning rate and length from sft_vs_rl's init, judged in-distribution",
  seeds: [1, 2],
  suites: ["indist", "rule-ood", "visual-ood"],
  evaluations: 1,
  arms: [...study.arms.filter((a) => a.name === "base" || a.name === "init"), ...candidates],
  ...(study.quick === undefined ? {} : { quick: study.quick })
})
