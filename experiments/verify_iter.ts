/**
 * How many attempts the environment allows at each waypoint during RL (verify_iter 1, 2 — the
 * paper's —, 3), from the study's start and compared along frontiers (experiments/footing.ts).
 * Every suite evaluates with the paper's 2 attempts, whatever the arm trained with, so that
 * per-step accuracy means the same for every arm.
 *
 *   npx virl run experiments/verify_iter.ts
 */
import { experiment } from "../src/core/experiment.ts"
import { FRONTIER_SUITES, frontierOf, onFooting, rlMethod, START } from "./footing.ts"

export default experiment(
  onFooting({
    name: "verify_iter",
    description: "attempts per waypoint in RL: 1, 2 (the paper's), 3, along frontiers",
    suites: FRONTIER_SUITES.map((s) => ({ ...s, config: { "env_config.verify_iter": 2 } })),
    arms: [...START, ...[1, 2, 3].flatMap((n) => rlMethod(`verify${n}`, { config: { "env_config.verify_iter": n } }))],
    frontier: frontierOf(["verify1", "verify2", "verify3"])
  })
)
