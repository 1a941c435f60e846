/**
 * How many attempts the environment allows at each waypoint (verify_iter: 1, 2, 3), for the
 * SFT initialisation and the RL arm trained from it.
 *
 *   npx virl sweep experiments/verify_iter.ts
 */
import { sweep } from "../src/core/experiment.ts"
import { shortRlExperiment } from "./short-rl.ts"

const base = shortRlExperiment("verify_iter")

export default sweep({
  name: "verify_iter",
  description: "attempts per waypoint: 1, 2 (the paper's), 3",
  base,
  compare: "rl",
  grid: {
    verify_iter: [1, 2, 3].map((n) => ({ label: String(n), config: { "env_config.verify_iter": n } }))
  }
})
