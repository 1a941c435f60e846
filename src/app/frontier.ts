import type { EpisodeOutcome } from "../core/evaluation.ts"
import type { FrontierClaim, FrontierMetric, FrontierSpec } from "../core/experiment.ts"
import type {
  Chosen,
  ClaimResult,
  Comparison,
  Estimate,
  FactorSplit,
  FrontierPath,
  FrontierPoint,
  FrontierResults,
  Replication,
  Values
} from "./frontier-results.ts"
import type { EvalRecord, KlRecord } from "./run-folder.ts"
import { holm, studentQuantile, twoSidedP } from "./statistics.ts"

/**
 * Methods compared along their frontiers (see `FrontierSpec`), in per-step accuracy and success
 * rate alike.
 *
 * Every reported number is a linear combination of evaluation results (a point, a point minus
 * the start, two methods' points interpolated at the same validation accuracy, the mean of the
 * points within a band of KL), with weights fixed by the validation suite and the KL probe —
 * never by a test suite. Its interval is a t-interval: the estimate is the mean over replicates
 * (bases, each the mean of its seeds; or seeds, where the run has one base), and its variance
 * adds the spread between replicates (t with replicates − 1 degrees of freedom) and the sampling
 * of routes (every replicate runs the same routes, so their spread misses it; the delta method's
 * variance of the estimate under resampling routes, paired across everything evaluated on the
 * same routes). A percentile bootstrap over 5 seeds was too narrow (its percentiles of 5 values
 * drawn with replacement); the t over replicates is exact for normal replicate means, and its
 * degrees of freedom count the bases, not the seeds, when there are several bases.
 */

const METRICS: ReadonlyArray<FrontierMetric> = ["step", "success"]

interface Cell {
  readonly arm: string
  readonly method: string
  readonly step: number
  readonly total: number
  readonly samples: number
  /** Per seed (index into seeds), or null where a seed has none. */
  readonly kl: ReadonlyArray<number> | null
}

/** One cell on one suite for one seed: each metric's value and its per-route influence. */
interface Measured {
  readonly value: Readonly<Record<FrontierMetric, number>>
  readonly influence: Readonly<Record<FrontierMetric, Float64Array>>
}

/**
 * A metric's value over routes and each route's influence on it: the derivative of the
 * resampled value by the route's weight, at the observed weights. Per-step accuracy is a ratio
 * (correct answers over answers, routes pooled), success a mean.
 */
const measure = (episodes: ReadonlyArray<EpisodeOutcome>): Measured => {
  const n = episodes.length
  let answers = 0
  let correct = 0
  let successes = 0
  for (const [a, c, s] of episodes) {
    answers += a
    correct += c
    successes += s
  }
  const step = answers === 0 ? 0 : correct / answers
  const success = n === 0 ? 0 : successes / n
  const stepInfluence = new Float64Array(n)
  const successInfluence = new Float64Array(n)
  episodes.forEach(([a, c, s], r) => {
    stepInfluence[r] = answers === 0 ? 0 : (c - step * a) / answers
    successInfluence[r] = (s - success) / n
  })
  return { value: { step, success }, influence: { step: stepInfluence, success: successInfluence } }
}

/** A linear statistic: a sum of weighted cell values on suites. */
type Terms = ReadonlyArray<{ readonly cell: number; readonly suite: number; readonly weight: number }>

const scaled = (terms: Terms, k: number): Terms => terms.map((t) => ({ ...t, weight: t.weight * k }))
const minus = (a: Terms, b: Terms): Terms => [...a, ...scaled(b, -1)]

const UNDEFINED: Estimate = { mean: Number.NaN, lo: Number.NaN, hi: Number.NaN, se: Number.NaN, df: Number.NaN, p: Number.NaN }

export interface FrontierInput {
  readonly spec: FrontierSpec
  readonly evals: ReadonlyArray<EvalRecord>
  readonly kls: ReadonlyArray<KlRecord>
  /** Each arm's method (arms without one are left out, but the start and the KL reference). */
  readonly methodOf: Readonly<Record<string, string | undefined>>
  readonly seeds: ReadonlyArray<number>
  /** Suites that evaluate the same routes in the same order share a key: their route sampling is paired. */
  readonly routeGroup: Readonly<Record<string, string>>
  /** The arm KL is measured against (the base). */
  readonly klReference?: string
}

/** The frontier comparison of a finished (or partly finished) frontier run. */
export const frontierResults = (input: FrontierInput): FrontierResults => {
  const { spec } = input
  const notes: string[] = []
  const chosenOn = spec.validation ?? spec.indist
  if (spec.validation === undefined) {
    notes.push(`no validation suite: points and configurations are chosen on ${spec.indist}, a test suite, so chosen points lean upward there`)
  }
  const suites = [...new Set([chosenOn, spec.indist, ...spec.ood])]
  const suiteIndex = (s: string) => suites.indexOf(s)
  const configurations: Record<string, string[]> = Object.fromEntries(
    spec.methods.map((m) => [m, [...new Set(Object.entries(input.methodOf).flatMap(([arm, method]) => (method === m ? [arm] : [])))].sort()])
  )
  const counts = spec.methods.map((m) => configurations[m]!.length)
  if (new Set(counts).size > 1) {
    notes.push(`methods have different numbers of configurations (${spec.methods.map((m, i) => `${m} ${counts[i]}`).join(", ")}): unequal tuning budgets`)
  }
  const wanted = [
    ...Object.values(configurations).flat(),
    ...(spec.start === undefined ? [] : [spec.start]),
    ...(input.klReference === undefined ? [] : [input.klReference])
  ]
  const byKey = new Map<string, EvalRecord[]>()
  for (const e of input.evals) {
    if (!wanted.includes(e.arm) || !suites.includes(e.suite)) continue
    const key = `${e.arm}\u0000${e.step}`
    byKey.set(key, [...(byKey.get(key) ?? []), e])
  }
  const finalsOf = (arm: string) => [...byKey.values()].filter((rs) => rs[0]!.arm === arm && rs[0]!.step === rs[0]!.total)
  // seeds that finished every configuration of every method (and the start) on every suite
  const seeds = input.seeds.filter((seed) =>
    wanted.every((arm) => {
      const finals = finalsOf(arm)
      return finals.length > 0 && finals.every((rs) => suites.every((s) => rs.some((r) => r.seed === seed && r.suite === s)))
    })
  )
  const missing = input.seeds.filter((s) => !seeds.includes(s))
  if (missing.length > 0) notes.push(`seed(s) ${missing.join(", ")} have not finished every configuration: left out`)

  // replicates: bases (each the mean of its seeds) where there are several, else seeds
  const baseOfSeed = new Map(seeds.map((seed) => [seed, input.evals.find((e) => e.seed === seed && e.base !== undefined)?.base]))
  const bases = [...new Set(seeds.map((s) => baseOfSeed.get(s)))]
  const groups: number[][] = bases.length >= 2
    ? bases.map((b) => seeds.flatMap((s, i) => (baseOfSeed.get(s) === b ? [i] : [])))
    : seeds.map((_, i) => [i])
  const unit: Replication["unit"] = bases.length >= 2 ? "base" : seeds.length >= 2 ? "seed" : "route"
  const df = unit === "route" ? Number.POSITIVE_INFINITY : groups.length - 1
  const seedWeight = new Float64Array(seeds.length)
  for (const g of groups) for (const i of g) seedWeight[i] = 1 / (groups.length * g.length)
  if (unit === "seed") notes.push("one base: the intervals run over seeds and routes; base-to-base variation is not in them")
  if (unit === "route") notes.push("one seed: the intervals carry route sampling alone")
  const seedsPerBase: Record<string, number[]> = {}
  for (const s of seeds) (seedsPerBase[String(baseOfSeed.get(s) ?? "")] ??= []).push(s)

  const klOf = (arm: string, step: number) => {
    if (arm === input.klReference) return seeds.map(() => 0)
    const values = seeds.map((seed) => input.kls.find((k) => k.arm === arm && k.step === step && k.seed === seed)?.kl)
    return values.every((v) => v !== undefined) ? (values as number[]) : null
  }
  const cells: Cell[] = []
  const measured: Measured[][][] = []
  for (const rs of byKey.values()) {
    const { arm, step, total } = rs[0]!
    const at = (suite: string, seed: number) => rs.find((r) => r.suite === suite && r.seed === seed)
    if (!seeds.every((seed) => suites.every((s) => at(s, seed)?.metrics.episodes !== undefined))) continue
    cells.push({
      arm,
      method: input.methodOf[arm] ?? arm,
      step,
      total,
      samples: seeds.reduce((sum, seed) => sum + at(spec.indist, seed)!.samples, 0) / Math.max(1, seeds.length),
      kl: klOf(arm, step)
    })
  }
  cells.sort((a, b) => a.arm.localeCompare(b.arm) || a.step - b.step)
  for (const c of cells) {
    const rs = byKey.get(`${c.arm}\u0000${c.step}`)!
    measured.push(suites.map((s) => seeds.map((seed) => measure(rs.find((r) => r.suite === s && r.seed === seed)!.metrics.episodes))))
  }
  const routes: Record<string, number> = Object.fromEntries(suites.map((s, u) => [s, measured[0]?.[u]?.[0]?.influence.step.length ?? 0]))
  // suites on the same routes (and as many of them) are resampled together
  const groupKeys = suites.map((s) => `${input.routeGroup[s] ?? s}\u0000${routes[s]}`)
  const routeGroups = [...new Set(groupKeys)].map((k) => suites.flatMap((_, u) => (groupKeys[u] === k ? [u] : [])))
  for (const [u, s] of suites.entries()) {
    const lengths = new Set(measured.flatMap((m) => m[u]!.map((x) => x.influence.step.length)))
    if (lengths.size > 1) notes.push(`suite ${s} has evaluations of different lengths (${[...lengths].join(", ")} episodes): routes cannot be paired`)
  }
  const q = studentQuantile(0.975, df)

  /** The estimate of a linear statistic and its interval. */
  const estimate = (terms: Terms, metric: FrontierMetric): Estimate => {
    if (terms.length === 0 || seeds.length === 0) return UNDEFINED
    const perSeed = seeds.map((_, i) => terms.reduce((sum, t) => sum + t.weight * measured[t.cell]![t.suite]![i]!.value[metric], 0))
    const unitValues = groups.map((g) => g.reduce((sum, i) => sum + perSeed[i]!, 0) / g.length)
    const mean = unitValues.reduce((s, v) => s + v, 0) / unitValues.length
    const between = unitValues.length >= 2 ? unitValues.reduce((s, v) => s + (v - mean) ** 2, 0) / (unitValues.length - 1) / unitValues.length : 0
    let sampling = 0
    for (const members of routeGroups) {
      const n = routes[suites[members[0]!]!]!
      const gradient = new Float64Array(n)
      for (const t of terms) {
        if (!members.includes(t.suite)) continue
        for (let i = 0; i < seeds.length; i++) {
          const infl = measured[t.cell]![t.suite]![i]!.influence[metric]
          const w = t.weight * seedWeight[i]!
          for (let r = 0; r < n; r++) gradient[r]! += w * infl[r]!
        }
      }
      for (let r = 0; r < n; r++) sampling += gradient[r]! ** 2
    }
    const se = Math.sqrt(between + sampling)
    return { mean, lo: mean - q * se, hi: mean + q * se, se, df, p: twoSidedP(mean, se, df) }
  }
  const at = (cell: number, suite: string): Terms => [{ cell, suite: suiteIndex(suite), weight: 1 }]
  /** A cell's value on every suite, per metric (with `minus`: minus that cell's). */
  const valuesOf = (cell: number, minusCell?: number): Values =>
    Object.fromEntries(
      METRICS.map((m) => [
        m,
        Object.fromEntries(suites.map((s) => [s, estimate(minusCell === undefined ? at(cell, s) : minus(at(cell, s), at(minusCell, s)), m)]))
      ])
    ) as unknown as Values
  const pointOf = (i: number): FrontierPoint => {
    const c = cells[i]!
    const kl = c.kl === null ? null : c.kl.reduce((s, v, k) => s + v * seedWeight[k]!, 0)
    return { arm: c.arm, method: c.method, step: c.step, total: c.total, samples: c.samples, values: valuesOf(i), kl }
  }
  const points = cells.map((_, i) => pointOf(i))
  /** The point estimate of a cell on a suite (what choices are made on: validation and KL only). */
  const pointValue = (cell: number, suite: string, metric: FrontierMetric) => points[cell]!.values[metric][suite]!.mean

  const methodCells = spec.methods.map((m) => cells.flatMap((c, i) => (c.method === m && configurations[m]!.includes(c.arm) ? [i] : [])))
  const startCell = spec.start === undefined ? -1 : cells.findIndex((c) => c.arm === spec.start && c.step === c.total)
  const referenceCell = input.klReference === undefined ? -1 : cells.findIndex((c) => c.arm === input.klReference && c.step === c.total)
  const select = { at: spec.select?.at ?? "any", metric: spec.select?.metric ?? "step" }
  const chosenCells = methodCells.map((cs) => {
    let best: number | undefined
    for (const c of cs) {
      if (select.at === "final" && cells[c]!.step !== cells[c]!.total) continue
      if (best === undefined || pointValue(c, chosenOn, select.metric) > pointValue(best, chosenOn, select.metric) + 1e-12) best = c
    }
    return best
  })
  const chosenOf = (cell: number): Chosen => {
    const c = cells[cell]!
    return {
      method: c.method,
      arm: c.arm,
      step: c.step,
      total: c.total,
      values: points[cell]!.values,
      gain: startCell < 0 ? valuesOf(cell, cell) : valuesOf(cell, startCell),
      kl: points[cell]!.kl
    }
  }
  const selected = chosenCells.flatMap((c) => (c === undefined ? [] : [chosenOf(c)]))
  const finals = cells.flatMap((c, i) => (c.step === c.total && methodCells.some((cs) => cs.includes(i)) ? [chosenOf(i)] : []))

  // each configuration's path: the start, then its points in training order
  const pathCells = (arm: string) => [...(startCell >= 0 ? [startCell] : []), ...cells.flatMap((c, i) => (c.arm === arm ? [i] : []))]
  const paths: FrontierPath[] = spec.methods.flatMap((m, k) =>
    configurations[m]!.map((arm) => ({
      method: m,
      arm,
      chosen: chosenCells[k] !== undefined && cells[chosenCells[k]!]!.arm === arm,
      points: pathCells(arm).map((c) => ({
        arm: cells[c]!.arm,
        step: cells[c]!.step,
        values: Object.fromEntries(METRICS.map((m) => [m, Object.fromEntries(suites.map((s) => [s, pointValue(c, s, m)]))])) as Record<
          FrontierMetric,
          Record<string, number>
        >
      }))
    }))
  )

  const pairs = spec.compare ?? spec.methods.flatMap((a, i) => spec.methods.slice(i + 1).map((b) => [a, b] as const))
  const mIndex = (m: string) => spec.methods.indexOf(m)
  /** A method's chosen configuration's path, by validation accuracy in `metric`. */
  const curve = (m: number, metric: FrontierMetric) => {
    const chosen = chosenCells[m]
    if (chosen === undefined || startCell < 0) return undefined
    const cs = pathCells(cells[chosen]!.arm)
    return cs.map((c) => ({ cell: c, x: pointValue(c, chosenOn, metric) }))
  }
  /** Weights of the first point along a curve where it reaches `level` (linear between the points either side). */
  const crossing = (path: ReadonlyArray<{ cell: number; x: number }>, level: number): Array<{ cell: number; weight: number }> | undefined => {
    for (let k = 1; k < path.length; k++) {
      if (path[k]!.x < level) continue
      const before = path[k - 1]!
      if (before.x >= level) return [{ cell: path[k]!.cell, weight: 1 }]
      const w = (level - before.x) / (path[k]!.x - before.x)
      return [{ cell: path[k]!.cell, weight: w }, { cell: before.cell, weight: 1 - w }]
    }
    return undefined
  }
  const on = (weights: ReadonlyArray<{ cell: number; weight: number }>, suite: string): Terms =>
    weights.map((w) => ({ cell: w.cell, suite: suiteIndex(suite), weight: w.weight }))
  /** Levels above the start's validation accuracy up to the highest both curves reach. */
  const levelsOf = (a: string, b: string, metric: FrontierMetric) => {
    const ca = curve(mIndex(a), metric)
    const cb = curve(mIndex(b), metric)
    if (ca === undefined || cb === undefined) return undefined
    const start = ca[0]!.x
    const top = Math.min(Math.max(...ca.slice(1).map((p) => p.x)), Math.max(...cb.slice(1).map((p) => p.x)))
    if (!(top > start)) return { ca, cb, levels: [] as Array<{ level: number; label: string }>, start, top }
    const pct = (x: number) => `${(100 * x).toFixed(1)} %`
    return {
      ca,
      cb,
      start,
      top,
      levels: [
        { level: start + (top - start) / 3, label: `a third of the way from the start to the highest both reach (${pct(start + (top - start) / 3)})` },
        { level: start + (2 * (top - start)) / 3, label: `two thirds of the way (${pct(start + (2 * (top - start)) / 3)})` },
        { level: top, label: `the highest both reach (${pct(top)})` }
      ]
    }
  }
  const matched_indist: Comparison[] = []
  const matched_kl: Comparison[] = []
  for (const [a, b] of pairs) {
    for (const metric of METRICS) {
      const found = levelsOf(a, b, metric)
      if (found === undefined) continue
      if (found.levels.length === 0) {
        notes.push(`${a} and ${b} (${metric}): not both pass the start's ${chosenOn} accuracy (${(100 * found.start).toFixed(1)} %); no matched comparison`)
      }
      for (const { level, label } of found.levels) {
        const wa = crossing(found.ca, level)!
        const wb = crossing(found.cb, level)!
        for (const suite of [spec.indist, ...spec.ood]) {
          const ta = on(wa, suite)
          const tb = on(wb, suite)
          matched_indist.push({
            a,
            b,
            suite,
            metric,
            level,
            label,
            a_value: estimate(ta, metric),
            b_value: estimate(tb, metric),
            difference: estimate(minus(ta, tb), metric)
          })
        }
      }
    }
    // bands of KL (equal in log KL) over the range both methods' points cover
    const values = [a, b].map((m) => methodCells[mIndex(m)]!.map((c) => points[c]!.kl ?? Number.NaN).filter(Number.isFinite))
    if (values.some((v) => v.length === 0)) continue
    const lo = Math.max(...values.map((v) => Math.min(...v)))
    const hi = Math.min(...values.map((v) => Math.max(...v)))
    if (!(lo > 0 && hi > lo)) {
      notes.push(`${a} and ${b} share no KL range with points of both: no comparison at matched KL`)
      continue
    }
    const edges = Array.from({ length: 5 }, (_, k) => lo * (hi / lo) ** (k / 4))
    for (let k = 0; k < 4; k++) {
      const bandLo = edges[k]!
      const bandHi = k === 3 ? edges[4]! * (1 + 1e-9) : edges[k + 1]!
      const inBand = (m: string) => methodCells[mIndex(m)]!.filter((c) => points[c]!.kl! >= bandLo && points[c]!.kl! < bandHi)
      const [ca, cb] = [inBand(a), inBand(b)]
      if (ca.length === 0 || cb.length === 0) continue
      for (const metric of METRICS) {
        for (const suite of spec.ood) {
          const ta: Terms = ca.map((cell) => ({ cell, suite: suiteIndex(suite), weight: 1 / ca.length }))
          const tb: Terms = cb.map((cell) => ({ cell, suite: suiteIndex(suite), weight: 1 / cb.length }))
          matched_kl.push({
            a,
            b,
            suite,
            metric,
            level: Math.sqrt(bandLo * edges[k + 1]!),
            label: `KL ${bandLo.toFixed(2)}–${edges[k + 1]!.toFixed(2)} nats (${ca.length} and ${cb.length} points)`,
            a_value: estimate(ta, metric),
            b_value: estimate(tb, metric),
            difference: estimate(minus(ta, tb), metric)
          })
        }
      }
    }
  }

  const selected_differences: Comparison[] = []
  for (const [a, b] of pairs) {
    const [ca, cb] = [chosenCells[mIndex(a)], chosenCells[mIndex(b)]]
    if (ca === undefined || cb === undefined) continue
    for (const metric of METRICS) {
      for (const suite of [spec.indist, ...spec.ood]) {
        selected_differences.push({
          a,
          b,
          suite,
          metric,
          level: Number.NaN,
          label: `each method's point chosen on ${chosenOn}`,
          a_value: estimate(at(ca, suite), metric),
          b_value: estimate(at(cb, suite), metric),
          difference: estimate(minus(at(ca, suite), at(cb, suite)), metric)
        })
      }
    }
  }

  const factors: FactorSplit[] = []
  if (spec.factors !== undefined) {
    const f = spec.factors
    for (const [m, method] of spec.methods.entries()) {
      const c = chosenCells[m]
      if (c === undefined) continue
      for (const metric of METRICS) {
        const drop = (suite: string) => estimate(minus(at(c, spec.indist), at(c, suite)), metric)
        factors.push({ method, metric, geometry: drop(f.geometry), appearance: drop(f.appearance), both: drop(f.both) })
      }
    }
  }

  const claimTerms = (c: FrontierClaim): { terms: Terms; statistic: string } | string => {
    const chosen = (m: string) => chosenCells[mIndex(m)]
    if ("gain" in c.test) {
      const cell = chosen(c.test.gain)
      if (cell === undefined || startCell < 0) return `${c.test.gain} has no chosen point or there is no start`
      return {
        terms: minus(at(cell, c.suite), at(startCell, c.suite)),
        statistic: `${c.test.gain} (${cells[cell]!.arm} step ${cells[cell]!.step}) − ${spec.start}`
      }
    }
    if ("difference" in c.test) {
      const [a, b] = c.test.difference
      const [ca, cb] = [chosen(a), chosen(b)]
      if (ca === undefined || cb === undefined) return `${a} or ${b} has no chosen point`
      return { terms: minus(at(ca, c.suite), at(cb, c.suite)), statistic: `${a} − ${b}, chosen points` }
    }
    const [a, b] = c.test.matched
    const found = levelsOf(a, b, c.metric)
    if (found === undefined || found.levels.length === 0) return `${a} and ${b} do not both pass the start's ${chosenOn} accuracy`
    const top = found.levels[found.levels.length - 1]!
    return {
      terms: minus(on(crossing(found.ca, top.level)!, c.suite), on(crossing(found.cb, top.level)!, c.suite)),
      statistic: `${a} − ${b} at ${(100 * top.level).toFixed(1)} % ${chosenOn} (${c.metric})`
    }
  }
  const claimed = (spec.claims ?? []).map((c) => {
    const t = claimTerms(c)
    if (typeof t === "string") {
      notes.push(`claim "${c.claim}": ${t}`)
      return { claim: c, statistic: "—", estimate: UNDEFINED }
    }
    return { claim: c, statistic: t.statistic, estimate: estimate(t.terms, c.metric) }
  })
  const adjusted = holm(claimed.map((c) => (Number.isFinite(c.estimate.p) ? c.estimate.p : 1)))
  const claims: ClaimResult[] = claimed.map(({ claim, statistic, estimate: e }, i) => {
    const up = (claim.direction ?? "up") === "up"
    const significant = adjusted[i]! < 0.05 && Number.isFinite(e.mean)
    const verdict = !significant ? "not shown" as const : (e.mean > 0) === up ? "supported" as const : "contradicted" as const
    return { ...claim, statistic, estimate: e, holm_p: adjusted[i]!, verdict }
  })

  return {
    spec,
    seeds: [...seeds],
    replication: { unit, units: groups.length, df, seedsPerBase },
    chosenOn,
    routes,
    configurations,
    ...(startCell >= 0 ? { start: points[startCell]! } : {}),
    ...(referenceCell >= 0 ? { reference: points[referenceCell]! } : {}),
    points: points.filter((p) => configurations[p.method]?.includes(p.arm) === true),
    paths,
    matched_indist,
    matched_kl,
    selected,
    selected_differences,
    finals,
    factors,
    claims,
    notes
  }
}
