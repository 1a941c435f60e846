/**
 * RL with the paper's per-step verification reward (process) against RL paid only at the
 * episode's end (outcome), from the study's start and compared along frontiers: each reward
 * over the same three learning rates, six evaluation points each (experiments/footing.ts).
 *
 *   npx virl run experiments/process_vs_outcome.ts
 */
import { experiment } from "../src/core/experiment.ts"
import * as Outcome from "../src/plugins/reward/outcome.ts"
import * as Process from "../src/plugins/reward/process.ts"
import { frontierOf, onFooting, rlMethod, START } from "./footing.ts"

export default experiment(
  onFooting({
    name: "process_vs_outcome",
    description: "per-step verification reward vs reward at the episode's end, along frontiers",
    arms: [...START, ...rlMethod("process", { layers: { reward: Process.layer } }), ...rlMethod("outcome", { layers: { reward: Outcome.layer } })],
    frontier: frontierOf(["process", "outcome"])
  })
)
