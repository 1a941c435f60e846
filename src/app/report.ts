import * as fs from "node:fs"
import * as path from "node:path"
import type { Suite } from "../core/experiment.ts"
import type { SuiteMetrics } from "../core/evaluation.ts"
import { writeFileAtomic } from "../core/files.ts"
import { PALETTE, renderPlot, type Series } from "./plot.ts"
import { readEvals, type EvalRecord } from "./run.ts"

export const SUITE_KEYS: Readonly<Record<Suite, string>> = { indist: "indist", "rule-ood": "rule_ood", "visual-ood": "visual_ood" }
const SUITE_TITLES: Readonly<Record<Suite, string>> = { indist: "In-distribution", "rule-ood": "Rule OOD", "visual-ood": "Visual OOD" }
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

export interface Results {
  readonly experiment: string
  readonly seeds: number[]
  readonly arms: Record<string, Record<string, Record<string, Stat>>>
}

/** Each arm's final evaluation per suite, mean ± sample standard deviation over seeds. */
export const aggregate = (experiment: string, evals: ReadonlyArray<EvalRecord>, arms: ReadonlyArray<string>, suites: ReadonlyArray<Suite>): Results => {
  const seeds = [...new Set(evals.map((e) => e.seed))].sort((a, b) => a - b)
  const out: Results["arms"] = {}
  for (const arm of arms) {
    const bySuite: Record<string, Record<string, Stat>> = {}
    for (const suite of suites) {
      const finals = seeds.flatMap((seed) => {
        const mine = evals.filter((e) => e.arm === arm && e.suite === suite && e.seed === seed && e.step === e.total)
        return mine.length === 0 ? [] : [mine[mine.length - 1].metrics]
      })
      if (finals.length === 0) continue
      bySuite[SUITE_KEYS[suite]] = Object.fromEntries(METRICS.map((m) => [m, stat(finals.map((f: SuiteMetrics) => f[m]))]))
    }
    out[arm] = bySuite
  }
  return { experiment, seeds, arms: out }
}

const pct = (s: Stat | undefined) => (s === undefined ? "—" : `${(100 * s.mean).toFixed(1)} ± ${(100 * s.std).toFixed(1)}`)

export const markdownTable = (results: Results, suites: ReadonlyArray<Suite>): string => {
  const head = `| arm | ${suites.map((s) => `${SUITE_TITLES[s]} per-step acc. | ${SUITE_TITLES[s]} success`).join(" | ")} |`
  const rule = `|---|${suites.map(() => "---:|---:").join("|")}|`
  const rows = Object.entries(results.arms).map(
    ([arm, m]) => `| ${arm} | ${suites.map((s) => `${pct(m[SUITE_KEYS[s]]?.["per_step_accuracy"])} | ${pct(m[SUITE_KEYS[s]]?.["success_rate"])}`).join(" | ")} |`
  )
  return [
    `# ${results.experiment}`,
    "",
    `Percent, mean ± standard deviation over seeds ${results.seeds.join(", ")} (final checkpoint of each arm).`,
    "",
    head,
    rule,
    ...rows,
    ""
  ].join("\n")
}

/** Per-step accuracy along training for each arm (mean over seeds at each evaluation point). */
export const curves = (evals: ReadonlyArray<EvalRecord>, arms: ReadonlyArray<string>, suite: Suite, parents: Readonly<Record<string, string>> = {}): Series[] =>
  arms.map((arm, i) => {
    const parent = parents[arm]
    // a continuing arm's curve starts where its parent's ended
    const start = parent === undefined ? [] : evals.filter((e) => e.arm === parent && e.suite === suite && e.step === e.total).map((e) => ({ ...e, step: 0 }))
    const mine = [...start, ...evals.filter((e) => e.arm === arm && e.suite === suite)]
    const steps = [...new Set(mine.map((e) => e.step))].sort((a, b) => a - b)
    const points: Array<[number, number]> = []
    const spread: number[] = []
    for (const step of steps) {
      const at = mine.filter((e) => e.step === step)
      const s = stat(at.map((e) => e.metrics.per_step_accuracy))
      points.push([at.reduce((sum, e) => sum + e.samples, 0) / at.length, s.mean])
      spread.push(s.std)
    }
    return { label: arm.toUpperCase(), colour: PALETTE[i % PALETTE.length], points, spread }
  })

/** Writes results.json, results.md and plots/*.png for a run folder; returns the Markdown table. */
export const writeReport = async (
  runDir: string,
  experiment: string,
  arms: ReadonlyArray<string>,
  suites: ReadonlyArray<Suite>,
  plotted: ReadonlyArray<string> = arms,
  parents: Readonly<Record<string, string>> = {}
): Promise<string> => {
  const evals = readEvals(path.join(runDir, "evals.jsonl"))
  const results = aggregate(experiment, evals, arms, suites)
  const table = markdownTable(results, suites)
  writeFileAtomic(path.join(runDir, "results.json"), JSON.stringify(results, null, 2))
  writeFileAtomic(path.join(runDir, "results.md"), table)
  fs.mkdirSync(path.join(runDir, "plots"), { recursive: true })
  const panels = suites.map((suite) => ({
    title: SUITE_TITLES[suite].toUpperCase(),
    xLabel: "TRAINING SAMPLES",
    yLabel: "PER-STEP ACCURACY",
    series: curves(evals, plotted, suite, parents),
    yRange: [0, 1] as const
  }))
  for (const [i, suite] of suites.entries()) writeFileAtomic(path.join(runDir, "plots", `${SUITE_KEYS[suite]}.png`), await renderPlot([panels[i]]))
  writeFileAtomic(path.join(runDir, "plots", "per_step_accuracy.png"), await renderPlot(panels))
  return table
}
