import type { Suite, SuiteSpec } from "../core/experiment.ts"
import * as Absolute from "../plugins/action-space/absolute.ts"
import * as Relative from "../plugins/action-space/relative.ts"
import type { SuiteLabel } from "./run-folder.ts"

/** The paper's in-distribution suite: the NYC evaluation routes, absolute directions. */
export const indist: SuiteSpec = { name: "indist", title: "In-distribution", dataset: "eval", actionSpace: Absolute.layer }
/** Rule-OOD: the same routes, relative directions (left, right, slightly left, slightly right). */
export const ruleOod: SuiteSpec = { name: "rule-ood", title: "Rule OOD", dataset: "eval", actionSpace: Relative.layer }
/** Visual-OOD: another city (San Francisco), absolute directions. */
export const visualOod: SuiteSpec = { name: "visual-ood", title: "Visual OOD", dataset: "visual-ood", actionSpace: Absolute.layer }

export const PAPER_SUITES: ReadonlyArray<SuiteSpec> = [indist, ruleOod, visualOod]
export const PAPER_SUITE_NAMES = ["indist", "rule-ood", "visual-ood"] as const

const NAME = /^[A-Za-z0-9_-]+$/

export class SuiteError extends Error {}

/** A suite value from its shorthand (a paper suite's name) or as given; names checked. */
export const suiteSpec = (suite: Suite): SuiteSpec => {
  if (typeof suite !== "string") {
    if (!NAME.test(suite.name)) throw new SuiteError(`suite name ${JSON.stringify(suite.name)}: use letters, digits, - and _ only`)
    return suite
  }
  const found = PAPER_SUITES.find((s) => s.name === suite)
  if (found === undefined) {
    throw new SuiteError(
      `unknown suite ${JSON.stringify(suite)}: the paper's are ${PAPER_SUITE_NAMES.join(", ")}; declare others as values ({ name, dataset, actionSpace })`
    )
  }
  return found
}

/** The experiment's suites as values, names unique. */
export const suiteSpecs = (suites: ReadonlyArray<Suite>): SuiteSpec[] => {
  const specs = suites.map(suiteSpec)
  const names = specs.map((s) => s.name)
  const twice = names.find((n, i) => names.indexOf(n) !== i)
  if (twice !== undefined) throw new SuiteError(`suite ${JSON.stringify(twice)} is declared twice`)
  return specs
}

export const suiteLabel = (s: SuiteSpec): SuiteLabel => ({ name: s.name, title: s.title ?? s.name })
