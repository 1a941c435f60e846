/**
 * The same RL arm trained with the paper's per-step verification reward (process) and with a
 * reward paid only at the episode's end (outcome).
 *
 *   npx virl sweep experiments/process_vs_outcome.ts
 */
import { experiment, sweep } from "../src/core/experiment.ts"
import * as Outcome from "../src/plugins/reward/outcome.ts"
import * as Process from "../src/plugins/reward/process.ts"
import { SHORT_RL } from "./short-rl.ts"

const base = experiment({
  name: "rl",
  seeds: [1],
  suites: ["indist", "rule-ood", "visual-ood"],
  evaluations: 2,
  arms: [
    { name: "init", recipe: { kind: "sft" }, hidden: true },
    { name: "rl", recipe: { kind: "ppo", from: "init" } }
  ],
  ...SHORT_RL
})

export default sweep({
  name: "process_vs_outcome",
  description: "per-step verification reward vs reward at the episode's end",
  base,
  compare: "rl",
  grid: {
    reward: [
      { label: "process", layers: { reward: Process.layer }, arms: ["rl"] },
      { label: "outcome", layers: { reward: Outcome.layer }, arms: ["rl"] }
    ]
  }
})
