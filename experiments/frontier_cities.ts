/**
 * The frontier study's final points on a second pair of cities: an NYC-style city and an SF-style
 * one laid out from other seeds (the same kinds of street grid, other streets and routes), to see
 * whether what the study found holds beyond the one pair it was run on. It trains nothing new:
 * run it into a copy of a finished frontier run folder, and every arm (its training done) is
 * evaluated from its final checkpoint on these suites; choices are still made on the study's
 * validation routes.
 *
 *   cp -r runs/frontier runs/frontier-cities
 *   npx virl run experiments/frontier_cities.ts --out runs/frontier-cities [the run's own flags]
 */
import { experiment, type SuiteSpec } from "../src/core/experiment.ts"
import * as Absolute from "../src/plugins/action-space/absolute.ts"
import * as Relative from "../src/plugins/action-space/relative.ts"
import study from "./frontier.ts"
import { FRONTIER_SUITES } from "./footing.ts"

const nyc = { synth: "nyc", seed: 100 }
const sf = { synth: "sf", seed: 101 }

const SUITES: ReadonlyArray<SuiteSpec> = [
  FRONTIER_SUITES.find((s) => s.name === "val-indist")!,
  { name: "indist-b", title: "In-distribution (second NYC)", dataset: nyc, actionSpace: Absolute.layer },
  { name: "rule-ood-b", title: "Rule OOD (second NYC)", dataset: nyc, actionSpace: Relative.layer },
  { name: "visual-ood-b", title: "Visual OOD (second SF)", dataset: sf, actionSpace: Absolute.layer }
]

const rename: Record<string, string> = { indist: "indist-b", "rule-ood": "rule-ood-b", "visual-ood": "visual-ood-b" }
// the grid-angle split of the visual shift has no counterpart here
const { factors: _, ...frontier } = study.frontier!

export default experiment({
  ...study,
  name: "frontier_cities",
  description: "the frontier study's final points on a second pair of cities (other layout seeds)",
  suites: SUITES,
  frontier: {
    ...frontier,
    indist: "indist-b",
    ood: ["rule-ood-b", "visual-ood-b"],
    claims: (study.frontier!.claims ?? []).flatMap((c) => (rename[c.suite] === undefined ? [] : [{ ...c, suite: rename[c.suite]! }]))
  }
})
