import type { EpisodeOutcome } from "../core/evaluation.ts"
import type { Experiment, FrontierSpec } from "../core/experiment.ts"
import { PythonRandom } from "../plugins/random/python-random.ts"
import type { Comparison, Estimate, FactorSplit, FrontierBand, FrontierPoint, FrontierResults, Selected } from "./frontier-results.ts"
import type { EvalRecord, KlRecord } from "./run-folder.ts"

/**
 * Methods compared along their frontiers (see `FrontierSpec`), with bootstrap intervals over
 * seeds and routes. Every arm of a seed starts from the same checkpoints and every evaluation
 * runs the same routes in the same order, so one replicate draws one multiset of seeds and one
 * of routes (per dataset) for all arms at once: comparisons are paired.
 */

interface Cell {
  readonly arm: string
  readonly method: string
  readonly step: number
  readonly total: number
  readonly samples: number
  /** Per suite, per seed (index into seeds): the episodes' outcomes. */
  readonly outcomes: ReadonlyArray<ReadonlyArray<ReadonlyArray<EpisodeOutcome>>>
  readonly success: ReadonlyArray<number>
  readonly kl: ReadonlyArray<number> | null
}

/** Per-step accuracy of episodes weighted by how often a replicate drew each route. */
const accuracy = (episodes: ReadonlyArray<EpisodeOutcome>, weights: Float64Array | undefined): number => {
  let answers = 0
  let correct = 0
  for (let r = 0; r < episodes.length; r++) {
    const w = weights === undefined ? 1 : weights[r]
    if (w === 0) continue
    answers += w * episodes[r][0]
    correct += w * episodes[r][1]
  }
  return answers === 0 ? 0 : correct / answers
}

const quantile = (sorted: ReadonlyArray<number>, q: number): number => {
  if (sorted.length === 0) return Number.NaN
  const at = q * (sorted.length - 1)
  const lo = Math.floor(at)
  const hi = Math.min(sorted.length - 1, lo + 1)
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo)
}

/** Collects replicate values of one quantity and summarises them. */
class Draws {
  private readonly values: number[] = []
  private missing = 0
  constructor(private readonly point: number | undefined) {}
  add(v: number | undefined): void {
    if (v === undefined || Number.isNaN(v)) this.missing++
    else this.values.push(v)
  }
  estimate(): Estimate {
    const sorted = [...this.values].sort((a, b) => a - b)
    const n = sorted.length + this.missing
    return { mean: this.point ?? Number.NaN, lo: quantile(sorted, 0.025), hi: quantile(sorted, 0.975), defined: n === 0 ? 0 : sorted.length / n }
  }
}

/** Accuracies of every cell on every suite for one draw of seeds and routes. */
interface Table {
  readonly indist: Float64Array
  /** Per OOD suite. */
  readonly ood: ReadonlyArray<Float64Array>
  readonly kl: Float64Array
}

/** The best OOD accuracy among `cells` whose in-distribution accuracy is at least `level`. */
const frontierAt = (t: Table, cells: ReadonlyArray<number>, suite: number, level: number): number | undefined => {
  let best: number | undefined
  for (const c of cells) if (t.indist[c] >= level - 1e-12 && (best === undefined || t.ood[suite][c] > best)) best = t.ood[suite][c]
  return best
}

/** The mean OOD accuracy of `cells` whose KL lies in [lo, hi). */
const klBandMean = (t: Table, cells: ReadonlyArray<number>, suite: number, lo: number, hi: number): number | undefined => {
  let sum = 0
  let n = 0
  for (const c of cells) {
    if (t.kl[c] >= lo && t.kl[c] < hi) {
      sum += t.ood[suite][c]
      n++
    }
  }
  return n === 0 ? undefined : sum / n
}

const selectCell = (t: Table, cells: ReadonlyArray<number>, final: ReadonlyArray<boolean>, at: "any" | "final"): number | undefined => {
  let best: number | undefined
  for (const c of cells) {
    if (at === "final" && !final[c]) continue
    if (best === undefined || t.indist[c] > t.indist[best] + 1e-12) best = c
  }
  return best
}

/**
 * What is wrong with an experiment's frontier declaration, if anything: methods without arms or
 * with unequal numbers of configurations (unequal tuning budgets), suites or arms it names that
 * the experiment lacks.
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
  const suites = [f.indist, ...f.ood, ...(f.factors === undefined ? [] : [f.factors.geometry, f.factors.appearance, f.factors.both])]
  const unknown = suites.filter((s) => !suiteNames.includes(s))
  if (unknown.length > 0) return `frontier: unknown suite(s) ${unknown.join(", ")}; the experiment's suites: ${suiteNames.join(", ")}`
  if (f.factors !== undefined && ![f.factors.geometry, f.factors.appearance, f.factors.both].every((s) => f.ood.includes(s))) {
    return "frontier: factors must name OOD suites"
  }
  if (f.start !== undefined && !e.arms.some((a) => a.name === f.start)) return `frontier: start ${JSON.stringify(f.start)} is not an arm`
  for (const [a, b] of f.compare ?? []) {
    if (!f.methods.includes(a) || !f.methods.includes(b)) return `frontier: compare names ${a} and ${b}; the methods are ${f.methods.join(", ")}`
  }
  return undefined
}

export interface FrontierInput {
  readonly spec: FrontierSpec
  readonly evals: ReadonlyArray<EvalRecord>
  readonly kls: ReadonlyArray<KlRecord>
  /** Each arm's method (arms without one are left out, but the start and the KL reference). */
  readonly methodOf: Readonly<Record<string, string | undefined>>
  readonly seeds: ReadonlyArray<number>
  /** Suites that evaluate the same routes share their route draws (in-distribution and rule-OOD on one dataset). */
  readonly routeGroup: Readonly<Record<string, string>>
  /** The arm KL is measured against (the base). */
  readonly klReference?: string
  /** The bootstrap's generator seed (recorded with the results). */
  readonly seed?: number
}

/** The frontier comparison of a finished (or partly finished) frontier run. */
export const frontierResults = (input: FrontierInput): FrontierResults => {
  const { spec } = input
  const notes: string[] = []
  const suites = [spec.indist, ...spec.ood]
  const configurations: Record<string, string[]> = Object.fromEntries(
    spec.methods.map((m) => [m, [...new Set(Object.entries(input.methodOf).flatMap(([arm, method]) => (method === m ? [arm] : [])))]])
  )
  const counts = spec.methods.map((m) => configurations[m]!.length)
  if (new Set(counts).size > 1) {
    notes.push(
      `methods have different numbers of configurations (${
        spec.methods.map((m, i) => `${m} ${counts[i]}`).join(", ")
      }): their frontiers had unequal tuning budgets`
    )
  }
  const wanted = [
    ...Object.values(configurations).flat(),
    ...(spec.start === undefined ? [] : [spec.start]),
    ...(input.klReference === undefined ? [] : [input.klReference])
  ]
  // keys of evaluation points: arm/step, with the seeds and suites each has
  const byKey = new Map<string, EvalRecord[]>()
  for (const e of input.evals) {
    if (!wanted.includes(e.arm) || !suites.includes(e.suite)) continue
    const key = `${e.arm}\u0000${e.step}`
    byKey.set(key, [...(byKey.get(key) ?? []), e])
  }
  const finalsOf = (arm: string) => [...byKey.entries()].filter(([, rs]) => rs[0]!.arm === arm && rs[0]!.step === rs[0]!.total)
  // seeds that finished every configuration of every method (and the start) on every suite
  const seeds = input.seeds.filter((seed) =>
    wanted.every((arm) => {
      const finals = finalsOf(arm)
      return finals.length > 0 && finals.every(([, rs]) => suites.every((s) => rs.some((r) => r.seed === seed && r.suite === s)))
    })
  )
  const missing = input.seeds.filter((s) => !seeds.includes(s))
  if (missing.length > 0) notes.push(`seed(s) ${missing.join(", ")} have not finished every configuration: left out`)
  const klOf = (arm: string, step: number) => {
    if (arm === input.klReference) return seeds.map(() => 0)
    const values = seeds.map((seed) => input.kls.find((k) => k.arm === arm && k.step === step && k.seed === seed)?.kl)
    return values.every((v) => v !== undefined) ? (values as number[]) : null
  }
  const cells: Cell[] = []
  // an arm evaluated once as a shared base (a pretrain arm) has its records under every seed's name
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
      outcomes: suites.map((s) => seeds.map((seed) => at(s, seed)!.metrics.episodes)),
      success: suites.map((s) => seeds.reduce((sum, seed) => sum + at(s, seed)!.metrics.success_rate, 0) / Math.max(1, seeds.length)),
      kl: klOf(arm, step)
    })
  }
  cells.sort((a, b) => a.arm.localeCompare(b.arm) || a.step - b.step)
  const routes: Record<string, number> = Object.fromEntries(suites.map((s, u) => [s, cells[0]?.outcomes[u]?.[0]?.length ?? 0]))
  const groups = [...new Set(suites.map((s) => input.routeGroup[s] ?? s))]
  const groupOf = suites.map((s) => groups.indexOf(input.routeGroup[s] ?? s))
  for (const [u, s] of suites.entries()) {
    const lengths = new Set(cells.flatMap((c) => c.outcomes[u]!.map((o) => o.length)))
    if (lengths.size > 1) notes.push(`suite ${s} has evaluations of different lengths (${[...lengths].join(", ")} episodes): routes cannot be paired`)
  }
  const groupRoutes = groups.map((_, g) => Math.max(0, ...suites.flatMap((s, u) => (groupOf[u] === g ? [routes[s]!] : []))))
  const methodCells = spec.methods.map((m) => cells.flatMap((c, i) => (c.method === m && configurations[m]!.includes(c.arm) ? [i] : [])))
  const isFinal = cells.map((c) => c.step === c.total)
  const startCell = spec.start === undefined ? -1 : cells.findIndex((c) => c.arm === spec.start && c.step === c.total)
  const referenceCell = input.klReference === undefined ? -1 : cells.findIndex((c) => c.arm === input.klReference && c.step === c.total)

  /** Every cell's accuracies for a draw: `seedDraw` indexes into seeds, `weights` per route group. */
  const table = (seedDraw: ReadonlyArray<number>, weights: ReadonlyArray<Float64Array | undefined>): Table => {
    const ofSuite = (u: number) => {
      const out = new Float64Array(cells.length)
      cells.forEach((c, i) => {
        const per = c.outcomes[u]!
        const cache = new Map<number, number>()
        let sum = 0
        for (const s of seedDraw) {
          let v = cache.get(s)
          if (v === undefined) cache.set(s, v = accuracy(per[s]!, weights[groupOf[u]!]))
          sum += v
        }
        out[i] = sum / seedDraw.length
      })
      return out
    }
    const kl = new Float64Array(cells.map((c) => (c.kl === null ? Number.NaN : seedDraw.reduce((s, k) => s + c.kl![k]!, 0) / seedDraw.length)))
    return { indist: ofSuite(0), ood: spec.ood.map((_, k) => ofSuite(k + 1)), kl }
  }
  const identity = seeds.map((_, i) => i)
  const point = table(identity, groups.map(() => undefined))

  // levels fixed from the point estimates, before any replicate is drawn, for each pair compared
  const maxIndist = methodCells.map((cs) => Math.max(...cs.map((c) => point.indist[c]!)))
  const startIndist = startCell >= 0 ? point.indist[startCell]! : undefined
  const pairs = spec.compare ?? spec.methods.flatMap((a, i) => spec.methods.slice(i + 1).map((b) => [a, b] as const))
  const indistLevelsOf = (a: number, b: number): Array<{ level: number; label: string }> => {
    const top = Math.min(maxIndist[a]!, maxIndist[b]!)
    if (!Number.isFinite(top)) return []
    const highest = { level: top, label: `the highest in-distribution accuracy both reach (${(100 * top).toFixed(1)} %)` }
    if (startIndist === undefined || startIndist >= top) return [highest]
    return [
      { level: startIndist, label: `the start's in-distribution accuracy (${(100 * startIndist).toFixed(1)} %)` },
      { level: (startIndist + top) / 2, label: `halfway between (${(50 * (startIndist + top)).toFixed(1)} %)` },
      highest
    ]
  }
  /** Four bands, equal in log KL, over the range both methods cover; a band either has no point in compares nothing. */
  const klBandsOf = (a: number, b: number): Array<{ lo: number; hi: number; level: number }> => {
    const values = [a, b].map((m) => methodCells[m]!.map((c) => point.kl[c]!).filter(Number.isFinite))
    if (values.some((v) => v.length === 0)) return []
    const lo = Math.max(...values.map((v) => Math.min(...v)))
    const hi = Math.min(...values.map((v) => Math.max(...v)))
    if (!(lo > 0 && hi > lo)) return []
    const edges = Array.from({ length: 5 }, (_, k) => lo * (hi / lo) ** (k / 4))
    return [0, 1, 2, 3]
      .map((k) => ({ lo: edges[k]!, hi: k === 3 ? edges[4]! * (1 + 1e-9) : edges[k + 1]!, level: Math.sqrt(edges[k]! * edges[k + 1]!) }))
      .filter((band) => [a, b].every((m) => methodCells[m]!.some((c) => point.kl[c]! >= band.lo && point.kl[c]! < band.hi)))
  }
  const mIndex = (m: string) => spec.methods.indexOf(m)
  const levels = pairs.map(([a, b]) => ({ indist: indistLevelsOf(mIndex(a), mIndex(b)), kl: klBandsOf(mIndex(a), mIndex(b)) }))
  pairs.forEach(([a, b], i) => {
    if (levels[i]!.indist.length === 1 && startIndist !== undefined) {
      notes.push(
        `${a} and ${b} are compared only at ${(100 * levels[i]!.indist[0]!.level).toFixed(1)} % in-distribution: not both reach above the start's ${
          (100 * startIndist).toFixed(1)
        } %`
      )
    }
    if (levels[i]!.kl.length === 0) notes.push(`${a} and ${b} share no KL range with points of both: no comparison at matched KL`)
  })
  const select = spec.select ?? { by: "indist" as const, at: "any" as const }
  const gridFor = (m: number) => {
    const lo = Math.min(...methodCells[m]!.map((c) => point.indist[c]!))
    return Array.from({ length: 25 }, (_, k) => lo + ((maxIndist[m]! - lo) * k) / 24)
  }
  const grids = spec.methods.map((_, m) => gridFor(m))
  const factorSuites = spec.factors === undefined
    ? undefined
    : [spec.factors.geometry, spec.factors.appearance, spec.factors.both].map((s) => spec.ood.indexOf(s))
  if (factorSuites !== undefined && factorSuites.some((i) => i < 0)) notes.push("factors name suites that are not among the OOD suites")

  // the statistics of one table, in a fixed order, so replicates line up with the point estimate
  const statistics = (t: Table): Array<number | undefined> => {
    const out: Array<number | undefined> = []
    for (const [i, [a, b]] of pairs.entries()) {
      for (let u = 0; u < spec.ood.length; u++) {
        for (const { level } of levels[i]!.indist) {
          const fa = frontierAt(t, methodCells[mIndex(a)]!, u, level)
          const fb = frontierAt(t, methodCells[mIndex(b)]!, u, level)
          out.push(fa, fb, fa === undefined || fb === undefined ? undefined : fa - fb)
        }
        for (const band of levels[i]!.kl) {
          const fa = klBandMean(t, methodCells[mIndex(a)]!, u, band.lo, band.hi)
          const fb = klBandMean(t, methodCells[mIndex(b)]!, u, band.lo, band.hi)
          out.push(fa, fb, fa === undefined || fb === undefined ? undefined : fa - fb)
        }
      }
    }
    const chosen = spec.methods.map((_, m) => selectCell(t, methodCells[m]!, isFinal, select.at))
    for (let m = 0; m < spec.methods.length; m++) {
      const c = chosen[m]
      out.push(c === undefined ? undefined : t.indist[c])
      for (let u = 0; u < spec.ood.length; u++) {
        out.push(c === undefined ? undefined : t.ood[u]![c])
        out.push(c === undefined || startCell < 0 ? undefined : t.ood[u]![c]! - t.ood[u]![startCell]!)
      }
      if (factorSuites !== undefined && factorSuites.every((i) => i >= 0)) {
        for (const f of factorSuites) out.push(c === undefined ? undefined : t.indist[c]! - t.ood[f]![c]!)
      }
    }
    for (const [a, b] of pairs) {
      const ca = chosen[mIndex(a)]
      const cb = chosen[mIndex(b)]
      for (let u = 0; u < spec.ood.length; u++) out.push(ca === undefined || cb === undefined ? undefined : t.ood[u]![ca]! - t.ood[u]![cb]!)
    }
    // the most any point of a method gains over the start, in-distribution and on each OOD suite
    for (let m = 0; m < spec.methods.length; m++) {
      for (let u = -1; u < spec.ood.length; u++) {
        const of = (c: number) => (u < 0 ? t.indist[c]! : t.ood[u]![c]!)
        out.push(startCell < 0 ? undefined : Math.max(...methodCells[m]!.map(of)) - of(startCell))
      }
    }
    for (let m = 0; m < spec.methods.length; m++) {
      for (let u = 0; u < spec.ood.length; u++) for (const x of grids[m]!) out.push(frontierAt(t, methodCells[m]!, u, x))
    }
    for (let i = 0; i < cells.length; i++) {
      out.push(t.indist[i])
      for (let u = 0; u < spec.ood.length; u++) out.push(t.ood[u]![i])
    }
    return out
  }

  const estimates = statistics(point)
  const draws = estimates.map((v) => new Draws(v))
  const replicates = cells.length === 0 || seeds.length === 0 ? 0 : (spec.bootstrap ?? 2000)
  const bootstrapSeed = input.seed ?? 0
  const rng = new PythonRandom(bootstrapSeed)
  for (let b = 0; b < replicates; b++) {
    const seedDraw = seeds.map(() => rng.choiceIndex(seeds.length))
    const weights = groupRoutes.map((n) => {
      const w = new Float64Array(n)
      for (let r = 0; r < n; r++) w[rng.choiceIndex(n)]! += 1
      return w
    })
    statistics(table(seedDraw, weights)).forEach((v, i) => draws[i]!.add(v))
  }
  let next = 0
  const take = () => draws[next++]!.estimate()

  const matched_indist: Comparison[] = []
  const matched_kl: Comparison[] = []
  for (const [i, [a, b]] of pairs.entries()) {
    for (const suite of spec.ood) {
      for (const { level, label } of levels[i]!.indist) matched_indist.push({ a, b, suite, level, label, a_value: take(), b_value: take(), difference: take() })
      for (const band of levels[i]!.kl) {
        matched_kl.push({
          a,
          b,
          suite,
          level: band.level,
          label: `KL ${band.lo.toFixed(2)}–${band.hi.toFixed(2)} nats`,
          a_value: take(),
          b_value: take(),
          difference: take()
        })
      }
    }
  }
  const chosen = spec.methods.map((_, m) => selectCell(point, methodCells[m]!, isFinal, select.at))
  const selected: Selected[] = []
  const factors: FactorSplit[] = []
  for (const [m, method] of spec.methods.entries()) {
    const indist = take()
    const ood: Record<string, Estimate> = {}
    const gain: Record<string, Estimate> = {}
    for (const suite of spec.ood) {
      ood[suite] = take()
      gain[suite] = take()
    }
    if (factorSuites !== undefined && factorSuites.every((i) => i >= 0)) factors.push({ method, geometry: take(), appearance: take(), both: take() })
    const c = chosen[m]
    if (c !== undefined) {
      selected.push({ method, arm: cells[c]!.arm, step: cells[c]!.step, indist, ood, gain, kl: Number.isFinite(point.kl[c]!) ? point.kl[c]! : null })
    }
  }
  const selected_differences: Comparison[] = []
  for (const [a, b] of pairs) {
    for (const suite of spec.ood) {
      const difference = take()
      const pick = (m: string) => selected.find((s) => s.method === m)?.ood[suite] ?? { mean: Number.NaN, lo: Number.NaN, hi: Number.NaN, defined: 0 }
      selected_differences.push({
        a,
        b,
        suite,
        level: Number.NaN,
        label: `each method's point chosen by ${select.by} (${select.at} points)`,
        a_value: pick(a),
        b_value: pick(b),
        difference
      })
    }
  }
  const best_gain: Record<string, Record<string, Estimate>> = {}
  for (const method of spec.methods) {
    best_gain[method] = {}
    for (const suite of [spec.indist, ...spec.ood]) best_gain[method]![suite] = take()
  }
  const bands: FrontierBand[] = []
  for (const [m, method] of spec.methods.entries()) {
    for (const suite of spec.ood) {
      const pts: Array<readonly [number, number, number, number]> = []
      for (const x of grids[m]!) {
        const e = take()
        if (Number.isFinite(e.mean)) pts.push([x, e.mean, e.lo, e.hi])
      }
      bands.push({ method, suite, points: pts })
    }
  }
  const points: FrontierPoint[] = cells.map((c, i) => {
    const indist = take()
    const ood: Record<string, Estimate> = {}
    for (const suite of spec.ood) ood[suite] = take()
    const kl = point.kl[i]!
    return {
      arm: c.arm,
      method: c.method,
      step: c.step,
      total: c.total,
      samples: c.samples,
      indist,
      ood,
      success: Object.fromEntries(suites.map((s, u) => [s, c.success[u]!])),
      kl: Number.isFinite(kl) ? kl : null
    }
  })
  const frontiers = Object.fromEntries(
    spec.methods.map((method, m) => [
      method,
      Object.fromEntries(
        spec.ood.map((suite, u) => {
          // the points no other point of the method beats on both axes, by in-distribution accuracy
          const own = methodCells[m]!.map((c) => [point.indist[c]!, point.ood[u]![c]!] as const).sort((p, q) => q[0] - p[0] || q[1] - p[1])
          const front: Array<readonly [number, number]> = []
          for (const p of own) if (front.length === 0 || p[1] > front[front.length - 1]![1]) front.push(p)
          return [suite, front.reverse()]
        })
      )
    ])
  )
  return {
    spec,
    seeds: [...seeds],
    replicates,
    bootstrap_seed: bootstrapSeed,
    routes,
    configurations,
    ...(startCell >= 0 ? { start: points[startCell]! } : {}),
    ...(referenceCell >= 0 ? { reference: points[referenceCell]! } : {}),
    points: points.filter((p) => configurations[p.method]?.includes(p.arm) === true),
    frontiers,
    bands,
    matched_indist,
    matched_kl,
    selected,
    selected_differences,
    best_gain,
    factors,
    notes
  }
}
