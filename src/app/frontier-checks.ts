import type { DatasetRef, Experiment } from "../core/experiment.ts"

/** What must hold of a frontier study before it runs: its declaration, and its validation routes apart from the test's. */

/**
 * What is wrong with an experiment's frontier declaration, if anything: methods without arms or
 * with unequal numbers of configurations (unequal tuning budgets), suites, arms or methods it
 * names that the experiment lacks.
 */
export const frontierProblem = (e: Experiment, suiteNames: ReadonlyArray<string>): string | undefined => {
  const f = e.frontier
  if (f === undefined) return undefined
  const counts = f.methods.map((m) => e.arms.filter((a) => a.method === m).length)
  const empty = f.methods.filter((_, i) => counts[i] === 0)
  if (empty.length > 0) {
    return `frontier: no arm has method ${empty.map((m) => JSON.stringify(m)).join(", ")} (arms carry it as \`method\`; see \`configurations\`)`
  }
  if (new Set(counts).size > 1) {
    return `frontier: methods must have as many configurations each (the same tuning budget): ${f.methods.map((m, i) => `${m} ${counts[i]}`).join(", ")}`
  }
  const suites = [
    f.indist,
    ...f.ood,
    ...(f.validation === undefined ? [] : [f.validation]),
    ...(f.factors === undefined ? [] : [f.factors.geometry, f.factors.appearance, f.factors.both])
  ]
  const unknown = suites.filter((s) => !suiteNames.includes(s))
  if (unknown.length > 0) return `frontier: unknown suite(s) ${unknown.join(", ")}; the experiment's suites: ${suiteNames.join(", ")}`
  if (f.validation !== undefined && [f.indist, ...f.ood].includes(f.validation)) {
    return `frontier: the validation suite ${f.validation} is also a test suite; choices made on it would be made on the test`
  }
  if (f.factors !== undefined && ![f.factors.geometry, f.factors.appearance, f.factors.both].every((s) => f.ood.includes(s))) {
    return "frontier: factors must name OOD suites"
  }
  if (f.start !== undefined && !e.arms.some((a) => a.name === f.start)) return `frontier: start ${JSON.stringify(f.start)} is not an arm`
  for (const [a, b] of f.compare ?? []) {
    if (!f.methods.includes(a) || !f.methods.includes(b)) return `frontier: compare names ${a} and ${b}; the methods are ${f.methods.join(", ")}`
  }
  for (const [i, c] of (f.claims ?? []).entries()) {
    const named = "gain" in c.test ? [c.test.gain] : "difference" in c.test ? [...c.test.difference] : [...c.test.matched]
    const stray = named.filter((m) => !f.methods.includes(m))
    if (stray.length > 0) return `frontier: claim ${i + 1} (${c.claim}) names ${stray.join(", ")}; the methods are ${f.methods.join(", ")}`
    if (![f.indist, ...f.ood].includes(c.suite)) return `frontier: claim ${i + 1} (${c.claim}) is read on ${c.suite}, not a test suite`
    if ("gain" in c.test && f.start === undefined) return `frontier: claim ${i + 1} (${c.claim}) is a gain over the start, and the frontier has no start`
  }
  return undefined
}

/** A suite's routes as far as a split check can tell: its dataset and how many episodes it runs. */
export interface SuiteRoutes {
  readonly name: string
  readonly dataset: DatasetRef
  readonly episodes: number
}

/**
 * Whether the validation suite shares routes with a test suite: the same dataset, or the same
 * synthetic city (at any grid angle: `nyc@0` is NYC's routes turned) with overlapping route ranges.
 */
export const validationLeak = (validation: SuiteRoutes, tests: ReadonlyArray<SuiteRoutes>): string | undefined => {
  const v = validation.dataset
  for (const t of tests) {
    const d = t.dataset
    if (typeof v !== "object" || typeof d !== "object" || !("synth" in v) || !("synth" in d)) {
      if (JSON.stringify(v) === JSON.stringify(d)) return `the validation suite ${validation.name} evaluates the same data as the test suite ${t.name}`
      continue
    }
    const city = (synth: string) => synth.split("@")[0]
    if (city(v.synth) !== city(d.synth) || v.seed !== d.seed) continue
    const [v0, v1] = [v.after ?? 0, (v.after ?? 0) + validation.episodes]
    const [t0, t1] = [d.after ?? 0, (d.after ?? 0) + t.episodes]
    if (v0 < t1 && t0 < v1) {
      return `the validation suite ${validation.name} (routes ${v0}–${
        v1 - 1
      } of ${v.synth} seed ${v.seed}) shares routes with the test suite ${t.name} (routes ${t0}–${t1 - 1}): choices made on it would be made on the test`
    }
  }
  return undefined
}
