/**
 * The same RL arm trained with the paper's per-step verification reward (process) and with a
 * reward paid only at the episode's end (outcome).
 *
 *   npx virl sweep experiments/process_vs_outcome.ts
 */
import { sweep } from "../src/core/experiment.ts"
import * as Outcome from "../src/plugins/reward/outcome.ts"
import * as Process from "../src/plugins/reward/process.ts"
import { shortRlExperiment } from "./short-rl.ts"

const base = shortRlExperiment("rl", { hideInit: true })

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
