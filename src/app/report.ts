import * as fs from "node:fs"
import * as path from "node:path"
import type { SuiteMetrics } from "../core/evaluation.ts"
import { writeFileAtomic } from "../core/files.ts"
import { frontierMarkdown, writeFrontier } from "./frontier-report.ts"
import type { Provenance } from "./provenance.ts"
import { PALETTE, type Series, writeFigure } from "./plot.ts"
import { meanInterval } from "./statistics.ts"
import { type EvalRecord, EVALS_FILE, type FrontierMeta, KL_FILE, type KlRecord, readEvals, readKl, RESULTS_FILE, type SuiteLabel } from "./run-folder.ts"

/** The key of a suite in results.json and the name of its plot: `rule-ood` → `rule_ood`. */
export const suiteKey = (name: string): string => name.replace(/-/g, "_")
const METRICS = ["per_step_accuracy", "success_rate", "mean_reward", "std_reward", "mean_steps", "mean_verification_steps"] as const

export interface Stat {
  readonly mean: number
  readonly std: number
  readonly per_seed: number[]
}

const stat = (xs: number[]): Stat => {
  const mean = xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length)
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1)) : 0
  return { mean, std, per_seed: xs }
}

/** One point of an arm's KL curve: mean ± std over seeds at one step of its training. */
export interface KlPoint {
  readonly step: number
  readonly samples: number
  readonly kl: Stat
  readonly parts: Record<string, Stat>
}

export interface Results {
  readonly experiment: string
  readonly seeds: number[]
  /** Per arm and suite (and `kl`: KL to the reference at the final checkpoint), mean ± std over seeds. */
  readonly arms: Record<string, Record<string, Record<string, Stat>>>
  /** Per arm: how many seeds its final numbers average, and the seeds that have not finished it. */
  readonly finished: Record<string, { readonly seeds: number[]; readonly missing: number[] }>
  /** Per arm: KL(reference ‖ policy) along training. */
  readonly kl: Record<string, KlPoint[]>
  readonly klReference?: string
}

const finalsOf = <R extends { seed: number; step: number; total: number }>(records: ReadonlyArray<R>, seeds: ReadonlyArray<number>): R[] =>
  seeds.flatMap((seed) => {
    const mine = records.filter((e) => e.seed === seed && e.step === e.total)
    return mine.length === 0 ? [] : [mine[mine.length - 1]]
  })

/**
 * Each arm's final evaluation per suite, mean ± sample standard deviation over the seeds that
 * finished it (named in `finished`), and its KL to the reference along training.
 */
export const aggregate = (
  experiment: string,
  evals: ReadonlyArray<EvalRecord>,
  arms: ReadonlyArray<string>,
  suites: ReadonlyArray<SuiteLabel>,
  kls: ReadonlyArray<KlRecord> = [],
  seedsRun?: ReadonlyArray<number>
): Results => {
  const seeds = seedsRun !== undefined ? [...seedsRun] : [...new Set(evals.map((e) => e.seed))].sort((a, b) => a - b)
  const out: Results["arms"] = {}
  const finished: Results["finished"] = {}
  const klSeries: Results["kl"] = {}
  for (const arm of arms) {
    const bySuite: Record<string, Record<string, Stat>> = {}
    const complete = seeds.filter((seed) =>
      suites.every((suite) => evals.some((e) => e.arm === arm && e.suite === suite.name && e.seed === seed && e.step === e.total))
    )
    finished[arm] = { seeds: complete, missing: seeds.filter((s) => !complete.includes(s)) }
    for (const suite of suites) {
      const finals = finalsOf(evals.filter((e) => e.arm === arm && e.suite === suite.name), complete).map((e) => e.metrics)
      if (finals.length === 0) continue
      bySuite[suiteKey(suite.name)] = {
        ...Object.fromEntries(METRICS.map((m) => [m, stat(finals.map((f: SuiteMetrics) => f[m]))])),
        // a generator's own failures: answers naming no action, or one outside the suite's action space
        ...(finals.every((f) => f.answers !== undefined)
          ? { unparsable: stat(finals.map((f) => f.answers!.unparsable)), outside_action_space: stat(finals.map((f) => f.answers!.outside_action_space)) }
          : {})
      }
    }
    const mine = kls.filter((k) => k.arm === arm && complete.includes(k.seed))
    const finalKl = finalsOf(mine, complete)
    if (finalKl.length > 0) bySuite["kl"] = { total: stat(finalKl.map((k) => k.kl)), ...partStats(finalKl) }
    out[arm] = bySuite
    const steps = [...new Set(mine.map((k) => k.step))].sort((a, b) => a - b)
    if (steps.length > 0) {
      klSeries[arm] = steps.map((step) => {
        const at = mine.filter((k) => k.step === step)
        return { step, samples: at.reduce((s, k) => s + k.samples, 0) / at.length, kl: stat(at.map((k) => k.kl)), parts: partStats(at) }
      })
    }
  }
  const reference = kls[0]?.reference
  return { experiment, seeds, arms: out, finished, kl: klSeries, ...(reference === undefined ? {} : { klReference: reference }) }
}

const partStats = (records: ReadonlyArray<KlRecord>): Record<string, Stat> => {
  const names = [...new Set(records.flatMap((r) => Object.keys(r.parts)))]
  return Object.fromEntries(names.map((n) => [n, stat(records.map((r) => r.parts[n] ?? 0))]))
}

const pct = (s: Stat | undefined) => (s === undefined ? "—" : `${(100 * s.mean).toFixed(1)} ± ${(100 * s.std).toFixed(1)}`)

const nats = (s: Stat | undefined) => (s === undefined ? "—" : `${s.mean.toFixed(3)} ± ${s.std.toFixed(3)}`)

export const markdownTable = (results: Results, suites: ReadonlyArray<SuiteLabel>): string => {
  const withKl = results.klReference !== undefined
  const head = `| arm | seeds | ${suites.map((s) => `${s.title} per-step acc. | ${s.title} success`).join(" | ")} |${
    withKl ? ` KL(${results.klReference} ‖ arm), nats |` : ""
  }`
  const rule = `|---|---:|${suites.map(() => "---:|---:").join("|")}|${withKl ? "---:|" : ""}`
  const rows = Object.entries(results.arms).map(([arm, m]) => {
    const f = results.finished[arm]
    const cells = suites.map((s) => `${pct(m[suiteKey(s.name)]?.["per_step_accuracy"])} | ${pct(m[suiteKey(s.name)]?.["success_rate"])}`).join(" | ")
    return `| ${arm} | ${f?.seeds.length ?? 0} | ${cells} |${withKl ? ` ${arm === results.klReference ? "0" : nats(m["kl"]?.["total"])} |` : ""}`
  })
  const unfinished = Object.entries(results.finished).filter(([, f]) => f.missing.length > 0)
  const written = Object.values(results.arms).some((m) => suites.some((s) => m[suiteKey(s.name)]?.["unparsable"] !== undefined))
  const answers = !written ? [] : [
    "",
    "Answers as written (a generative policy's): percent of answers naming no action the parser finds | naming an action outside the suite's action space.",
    "",
    `| arm | ${suites.map((s) => `${s.title} unparsable | ${s.title} outside`).join(" | ")} |`,
    `|---|${suites.map(() => "---:|---:").join("|")}|`,
    ...Object.entries(results.arms).map(([arm, m]) =>
      `| ${arm} | ${suites.map((s) => `${pct(m[suiteKey(s.name)]?.["unparsable"])} | ${pct(m[suiteKey(s.name)]?.["outside_action_space"])}`).join(" | ")} |`
    )
  ]
  return [
    `# ${results.experiment}`,
    "",
    `Percent, mean ± standard deviation over the seeds that finished each arm (of ${results.seeds.join(", ")}; final checkpoint of each arm).` +
    (withKl ? ` KL: forward KL from ${results.klReference} to the arm's final policy on in-distribution training inputs, mean over inputs.` : ""),
    "",
    head,
    rule,
    ...rows,
    ...answers,
    ...(unfinished.length === 0 ? [] : ["", ...unfinished.map(([arm, f]) => `Not finished: arm ${arm}, seed(s) ${f.missing.join(", ")}.`)]),
    ""
  ].join("\n")
}

/** Accuracy on an OOD suite against in-distribution accuracy (or KL) along training, one curve per arm. */
export const tradeoffCurves = (
  evals: ReadonlyArray<EvalRecord>,
  kls: ReadonlyArray<KlRecord>,
  arms: ReadonlyArray<string>,
  suite: SuiteLabel,
  x: "indist" | "kl",
  parents: Readonly<Record<string, string>> = {}
): Series[] =>
  arms.flatMap((arm, i) => {
    const parent = parents[arm]
    const xAt = (a: string, seed: number, step: number): number | undefined =>
      x === "kl"
        ? kls.find((k) => k.arm === a && k.seed === seed && k.step === step)?.kl ?? (a === kls[0]?.reference ? 0 : undefined)
        : evals.find((e) => e.arm === a && e.seed === seed && e.step === step && e.suite === "indist")?.metrics.per_step_accuracy
    const own = evals.filter((e) => e.arm === arm && e.suite === suite.name)
    const start = parent === undefined ? [] : evals.filter((e) => e.arm === parent && e.suite === suite.name && e.step === e.total)
    const pairs = [
      ...start.map((e) => ({ key: -1, at: xAt(parent!, e.seed, e.step), y: e.metrics.per_step_accuracy })),
      ...own.map((e) => ({ key: e.step, at: xAt(arm, e.seed, e.step), y: e.metrics.per_step_accuracy }))
    ]
    const keys = [...new Set(pairs.map((p) => p.key))].sort((a, b) => a - b)
    const points: Array<[number, number]> = []
    for (const key of keys) {
      const at = pairs.filter((p) => p.key === key && p.at !== undefined)
      if (at.length === 0) continue
      points.push([at.reduce((s, p) => s + p.at!, 0) / at.length, at.reduce((s, p) => s + p.y, 0) / at.length])
    }
    return points.length === 0 ? [] : [{ label: arm, colour: PALETTE[i % PALETTE.length], points }]
  })

/**
 * Per-step accuracy along training for each arm (mean over seeds at each evaluation point, with
 * its 95 % interval over seeds), against the training samples of post-training: an arm that
 * continues another starts at 0 where its parent ended, and a start that others continue ends at 0.
 */
export const curves = (
  evals: ReadonlyArray<EvalRecord>,
  arms: ReadonlyArray<string>,
  suite: SuiteLabel,
  parents: Readonly<Record<string, string>> = {}
): Series[] =>
  arms.map((arm, i) => {
    const parent = parents[arm]
    const endOf = (a: string, seed: number) => evals.find((e) => e.arm === a && e.seed === seed && e.suite === suite.name && e.step === e.total)?.samples ?? 0
    // a start that others continue (the base) ends at 0: its own training lies before post-training
    const isStart = parent === undefined && Object.values(parents).includes(arm)
    const parentEnd = (seed: number) => (parent !== undefined ? endOf(parent, seed) : isStart ? endOf(arm, seed) : 0)
    const start = parent === undefined
      ? []
      : evals.filter((e) => e.arm === parent && e.suite === suite.name && e.step === e.total).map((e) => ({ ...e, step: 0 }))
    const mine = [...start, ...evals.filter((e) => e.arm === arm && e.suite === suite.name)]
    const steps = [...new Set(mine.map((e) => e.step))].sort((a, b) => a - b)
    const points: Array<[number, number]> = []
    const band: Array<readonly [number, number]> = []
    for (const step of steps) {
      const at = mine.filter((e) => e.step === step)
      const ys = at.map((e) => e.metrics.per_step_accuracy)
      points.push([at.reduce((sum, e) => sum + e.samples - parentEnd(e.seed), 0) / at.length, stat(ys).mean])
      band.push(meanInterval(ys))
    }
    return { label: arm, colour: PALETTE[i % PALETTE.length], points, band }
  })

/** Writes results.json, results.md and the figures (plots/*.svg, .png, .csv) of a run folder; returns the Markdown table. */
export const writeReport = async (
  runDir: string,
  experiment: string,
  arms: ReadonlyArray<string>,
  suites: ReadonlyArray<SuiteLabel>,
  plotted: ReadonlyArray<string> = arms,
  parents: Readonly<Record<string, string>> = {},
  seeds?: ReadonlyArray<number>,
  frontier?: FrontierMeta,
  /** How the run was made (see provenance.ts), kept in results.json. */
  made?: Provenance
): Promise<string> => {
  const evals = readEvals(path.join(runDir, EVALS_FILE))
  const kls = readKl(path.join(runDir, KL_FILE))
  const results = aggregate(experiment, evals, arms, suites, kls, seeds)
  fs.mkdirSync(path.join(runDir, "plots"), { recursive: true })
  const compared = frontier === undefined ? undefined : await writeFrontier(runDir, frontier, evals, kls, results.seeds, suites)
  const table = markdownTable(results, suites) + (compared === undefined ? "" : `\n${frontierMarkdown(compared, suites)}`)
  writeFileAtomic(
    path.join(runDir, RESULTS_FILE),
    JSON.stringify({ ...results, ...(compared === undefined ? {} : { frontier: compared }), ...(made === undefined ? {} : { provenance: made }) }, null, 2)
  )
  writeFileAtomic(path.join(runDir, "results.md"), table)
  const plots = path.join(runDir, "plots")
  const post = Object.keys(parents).length > 0 ? "post-training samples" : "training samples"
  const panels = suites.map((suite) => ({
    title: suite.title,
    xLabel: post,
    yLabel: "per-step accuracy",
    series: curves(evals, plotted, suite, parents),
    yRange: [0, 1] as const,
    yPercent: true
  }))
  // the figures side by side: each PNG is rasterised on libuv's threads while the next SVG is drawn
  const figures: Array<Promise<void>> = suites.map((suite, i) => writeFigure(plots, suiteKey(suite.name), [panels[i]]))
  figures.push(writeFigure(plots, "per_step_accuracy", panels))
  const ood = suites.filter((s) => s.name !== "indist")
  if (suites.some((s) => s.name === "indist") && ood.length > 0) {
    const pareto = ood.map((suite) => ({
      title: `${suite.title} vs in-distribution`,
      xLabel: "in-distribution per-step accuracy",
      yLabel: "per-step accuracy",
      series: tradeoffCurves(evals, kls, plotted, suite, "indist", parents),
      yRange: [0, 1] as const,
      yPercent: true,
      xPercent: true
    }))
    figures.push(writeFigure(plots, "pareto", pareto))
  }
  if (kls.length > 0 && ood.length > 0) {
    const klPanels = ood.map((suite) => ({
      title: `${suite.title} vs KL`,
      xLabel: `KL(${kls[0].reference} ‖ arm), nats`,
      yLabel: "per-step accuracy",
      series: tradeoffCurves(evals, kls, plotted, suite, "kl", parents),
      yRange: [0, 1] as const,
      yPercent: true
    }))
    figures.push(writeFigure(plots, "ood_vs_kl", klPanels))
  }
  await Promise.all(figures)
  return table
}
