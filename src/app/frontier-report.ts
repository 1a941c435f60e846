import * as path from "node:path"
import type { FrontierMetric } from "../core/experiment.ts"
import { writeFileAtomic } from "../core/files.ts"
import { ACTION_CLASSES } from "../core/evaluation.ts"
import { finalBreakdown } from "./answers.ts"
import { frontierResults } from "./frontier.ts"
import type { Chosen, Comparison, Estimate, FrontierResults } from "./frontier-results.ts"
import { PALETTE, type Panel, type Series, writeFigure } from "./plot.ts"
import type { EvalRecord, FrontierMeta, KlRecord, SuiteLabel } from "./run-folder.ts"

const METRICS: ReadonlyArray<FrontierMetric> = ["step", "success"]
const METRIC_NAME: Readonly<Record<FrontierMetric, string>> = { step: "per-step accuracy", success: "success rate" }

const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(1) : "—")
/** A rate with its interval, the interval kept within [0, 100] % (a t-interval of a rate near 0 reaches below it). */
const interval = (e: Estimate | undefined) =>
  e === undefined || !Number.isFinite(e.mean) ? "—" : `${pct(e.mean)} [${pct(Math.max(0, e.lo))}, ${pct(Math.min(1, e.hi))}]`
const signedNumber = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(100 * x).toFixed(1)}`
/** A difference with its interval; ▲/▼ where the interval excludes 0. */
export const signed = (e: Estimate | undefined) => {
  if (e === undefined || !Number.isFinite(e.mean)) return "—"
  const verdict = e.lo > 0 ? " ▲" : e.hi < 0 ? " ▼" : ""
  return `${signedNumber(e.mean)} [${signedNumber(e.lo)}, ${signedNumber(e.hi)}]${verdict}`
}
const pValue = (p: number) => (!Number.isFinite(p) ? "—" : p < 0.001 ? "< 0.001" : p.toFixed(3))

/** How the intervals were made, in one paragraph. */
export const intervalsText = (r: FrontierResults): string => {
  const { replication: rep } = r
  const bases = Object.entries(rep.seedsPerBase)
  const over = rep.unit === "base"
    ? `${rep.units} independently pretrained bases (${
      bases.map(([b, s]) => `base ${b}: seed${s.length > 1 ? "s" : ""} ${s.join(", ")}`).join("; ")
    }), each the mean of its seeds`
    : rep.unit === "seed"
    ? `${rep.units} seeds of one base`
    : "one seed"
  const spread = rep.unit === "route"
    ? "95 % intervals are normal intervals from the sampling of routes alone (the delta method, paired across everything run on the same routes): "
    : `95 % intervals are t-intervals: the variance adds the spread between ${rep.unit === "base" ? "bases" : "seeds"} (t with ${
      Number.isFinite(rep.df) ? rep.df : "∞"
    } degrees of freedom) and the sampling of routes (the delta method, paired across everything run on the same routes): `
  return `Estimates are means over ${over}. ${spread}` +
    `routes per suite ${Object.entries(r.routes).map(([s, n]) => `${s} ${n}`).join(", ")}. ▲/▼: the interval excludes 0. ` +
    `Every choice (a method's point and configuration, the levels methods are matched at) is made on ${r.chosenOn}.`
}

const comparisonRows = (rows: ReadonlyArray<Comparison>, title: (suite: string) => string) =>
  rows.map((c) => `| ${title(c.suite)} | ${c.label} | ${c.a} ${interval(c.a_value)} | ${c.b} ${interval(c.b_value)} | ${signed(c.difference)} |`)

/** The frontier comparison as Markdown: claims, chosen and final points, matched comparisons, every point. */
export const frontierMarkdown = (r: FrontierResults, suites: ReadonlyArray<SuiteLabel>): string => {
  const title = (name: string) => suites.find((s) => s.name === name)?.title ?? name
  const ood = r.spec.ood
  const test = [r.spec.indist, ...ood]
  const out: string[] = ["## Frontiers", "", intervalsText(r), ""]
  if (r.notes.length > 0) out.push(...r.notes.map((n) => `- ${n}`), "")
  out.push(
    `Configurations per method: ${
      Object.entries(r.configurations).map(([m, cs]) => `${m} ${cs.length}`).join(", ")
    }, each evaluated at every evaluation point.`,
    ""
  )
  if (r.claims.length > 0) {
    out.push(
      `### The paper's claims (${r.claims.length} tests, Holm-corrected together)`,
      "",
      "| claim | the paper | metric, suite | statistic | ours [95 % interval] | p | Holm p | verdict |",
      "|---|---|---|---|---:|---:|---:|---|",
      ...r.claims.map((c) =>
        `| ${c.claim} | ${c.paper} | ${METRIC_NAME[c.metric]}, ${title(c.suite)} | ${c.statistic} | ${signed(c.estimate)} | ${pValue(c.estimate.p)} | ${
          pValue(c.holm_p)
        } | ${c.verdict} |`
      ),
      ""
    )
  }
  const chosenTable = (rows: ReadonlyArray<Chosen>, metric: FrontierMetric, name: (c: Chosen) => string) => [
    `| ${rows === r.selected ? "method | chosen" : "configuration | method"} | ${r.chosenOn === r.spec.indist ? "" : `${title(r.chosenOn)} | `}${
      test.map((s) => `${title(s)} (gain)`).join(" | ")
    } | KL |`,
    `|---|---|${r.chosenOn === r.spec.indist ? "" : "---:|"}${test.map(() => "---:").join("|")}|---:|`,
    ...rows.map((c) =>
      `| ${name(c)} | ${r.chosenOn === r.spec.indist ? "" : `${interval(c.values[metric][r.chosenOn])} | `}${
        test.map((s) => `${interval(c.values[metric][s])} (${signed(c.gain[metric][s])})`).join(" | ")
      } | ${c.kl === null ? "—" : c.kl.toFixed(2)} |`
    ),
    ""
  ]
  for (const metric of METRICS) {
    const m = METRIC_NAME[metric]
    out.push(`### ${m[0]!.toUpperCase()}${m.slice(1)}`, "")
    if (r.start !== undefined) {
      out.push(
        `Start (${r.start.arm}): ${test.map((s) => `${title(s)} ${interval(r.start!.values[metric][s])}`).join(", ")}${
          r.reference === undefined ? "" : `; ${r.reference.arm}: ${test.map((s) => `${title(s)} ${interval(r.reference!.values[metric][s])}`).join(", ")}`
        }.`,
        ""
      )
    }
    if (r.selected.length > 0) {
      out.push(
        `#### One point per method, chosen on ${title(r.chosenOn)} (highest ${METRIC_NAME[r.spec.select?.metric ?? "step"]}, ${
          r.spec.select?.at ?? "any"
        } points)`,
        "",
        ...chosenTable(r.selected, metric, (c) => `${c.method} | ${c.arm} step ${c.step}/${c.total}`),
        "| suite | compared | a | b | a − b |",
        "|---|---|---|---|---:|",
        ...comparisonRows(r.selected_differences.filter((c) => c.metric === metric), title),
        ""
      )
    }
    if (r.finals.length > 0) {
      out.push("#### Every configuration's final point (no choice made)", "", ...chosenTable(r.finals, metric, (c) => `${c.arm} | ${c.method}`))
    }
    const matched = r.matched_indist.filter((c) => c.metric === metric)
    if (matched.length > 0) {
      out.push(
        `#### At matched ${title(r.chosenOn)} ${m}`,
        "",
        `Each method's chosen configuration, from the start along its training, interpolated where its ${title(r.chosenOn)} ${m} first reaches the level.`,
        "",
        "| suite | matched at | a | b | a − b |",
        "|---|---|---|---|---:|",
        ...comparisonRows(matched, title),
        ""
      )
    }
    const kl = r.matched_kl.filter((c) => c.metric === metric)
    if (kl.length > 0) {
      out.push(
        "#### At matched KL from the reference",
        "",
        "The mean over each method's points (every configuration) whose KL lies in the band: four bands, equal in log KL, over the range both cover.",
        "",
        "| suite | band | a | b | a − b |",
        "|---|---|---|---|---:|",
        ...comparisonRows(kl, title),
        ""
      )
    }
    const factors = r.factors.filter((f) => f.metric === metric)
    if (factors.length > 0 && r.spec.factors !== undefined) {
      const f = r.spec.factors
      out.push(
        `#### What the visual shift is made of (drop from ${title(r.spec.indist)} at the chosen points)`,
        "",
        `| method | ${title(f.geometry)} (another grid angle) | ${title(f.appearance)} (another look) | ${title(f.both)} (both) |`,
        "|---|---:|---:|---:|",
        ...factors.map((x) => `| ${x.method} | ${signed(x.geometry)} | ${signed(x.appearance)} | ${signed(x.both)} |`),
        ""
      )
    }
  }
  if (r.answers !== undefined && r.answers.length > 0) {
    const share = (n: number, d: number) => (d === 0 ? "—" : `${((100 * n) / d).toFixed(1)}`)
    out.push(
      "### What success is made of (final points, answers summed over seeds)",
      "",
      "Per ground-truth action: the share of answers right, and the share of failed routes whose last answer (the one that ran out of attempts) asked for it.",
      ""
    )
    for (const suite of test) {
      const rows = r.answers.filter((a) => a.suite === suite)
      if (rows.length === 0) continue
      out.push(
        `#### ${title(suite)}`,
        "",
        `| arm | ${ACTION_CLASSES.map((c) => `${c} right %`).join(" | ")} | failed routes | ${ACTION_CLASSES.map((c) => `ended at ${c} %`).join(" | ")} |`,
        `|---|${ACTION_CLASSES.map(() => "---:").join("|")}|---:|${ACTION_CLASSES.map(() => "---:").join("|")}|`,
        ...rows.map((a) => {
          const failed = ACTION_CLASSES.reduce((n, c) => n + a.breakdown[c].failed_here, 0)
          return `| ${a.arm} | ${ACTION_CLASSES.map((c) => share(a.breakdown[c].correct, a.breakdown[c].answers)).join(" | ")} | ${failed} | ${
            ACTION_CLASSES.map((c) => share(a.breakdown[c].failed_here, failed)).join(" | ")
          } |`
        }),
        ""
      )
    }
  }
  const all = [...new Set([r.chosenOn, ...test])]
  for (const metric of METRICS) {
    out.push(
      `### Every configuration at every evaluation point (${METRIC_NAME[metric]})`,
      "",
      `| point | step | ${all.map(title).join(" | ")} | KL |`,
      `|---|---:|${all.map(() => "---:").join("|")}|---:|`
    )
    const row = (name: string, p: { step: number; total: number; values: FrontierResults["points"][number]["values"]; kl: number | null }) =>
      `| ${name} | ${p.step}/${p.total} | ${all.map((s) => interval(p.values[metric][s])).join(" | ")} | ${p.kl === null ? "—" : p.kl.toFixed(2)} |`
    if (r.reference !== undefined) out.push(row(`${r.reference.arm} (reference)`, r.reference))
    if (r.start !== undefined) out.push(row(`${r.start.arm} (start)`, r.start))
    for (const p of r.points) out.push(row(p.arm, p))
    out.push("")
  }
  return out.join("\n")
}

/** Every point as CSV: method, arm, step, samples, KL, and per metric each suite's estimate with its interval. */
export const frontierCsv = (r: FrontierResults): string => {
  const suites = [...new Set([r.chosenOn, r.spec.indist, ...r.spec.ood])]
  const head = [
    "method",
    "arm",
    "step",
    "total",
    "samples",
    "kl",
    ...METRICS.flatMap((m) => suites.flatMap((s) => [`${s}_${m}`, `${s}_${m}_lo`, `${s}_${m}_hi`]))
  ]
  const rows = [...(r.reference === undefined ? [] : [r.reference]), ...(r.start === undefined ? [] : [r.start]), ...r.points].map((p) =>
    [
      p.method,
      p.arm,
      p.step,
      p.total,
      Math.round(p.samples),
      p.kl ?? "",
      ...METRICS.flatMap((m) =>
        suites.flatMap((s) => {
          const e = p.values[m][s]!
          return [e.mean, e.lo, e.hi].map((x) => x.toFixed(4))
        })
      )
    ].join(",")
  )
  return [head.join(","), ...rows, ""].join("\n")
}

const BLACK = [0, 0, 0] as const

/**
 * OOD against validation accuracy, one panel per OOD suite: every configuration's path from the
 * start (thin), each method's chosen configuration drawn bold; the start in black.
 */
const frontierPanels = (r: FrontierResults, suites: ReadonlyArray<SuiteLabel>, metric: FrontierMetric): Panel[] => {
  const title = (name: string) => suites.find((s) => s.name === name)?.title ?? name
  const xs = r.paths.flatMap((p) => p.points.map((q) => q.values[metric][r.chosenOn]!)).filter(Number.isFinite)
  const lo = Math.max(0, Math.min(...xs) - 0.02)
  const hi = Math.min(1, Math.max(...xs) + 0.02)
  return r.spec.ood.map((suite) => {
    const series: Series[] = r.spec.methods.flatMap((method, m) => {
      const colour = PALETTE[m % PALETTE.length]!
      return r.paths.filter((p) => p.method === method).map((p) => ({
        label: p.chosen ? method : `${p.arm}`,
        colour,
        points: p.points.map((q) => [q.values[metric][r.chosenOn]!, q.values[metric][suite]!] as const),
        line: "straight" as const,
        marker: p.chosen ? 3 : 1.5,
        legend: p.chosen
      }))
    })
    if (r.start !== undefined) {
      series.push({
        label: `${r.start.arm} (start)`,
        colour: BLACK,
        points: [[r.start.values[metric][r.chosenOn]!.mean, r.start.values[metric][suite]!.mean]],
        line: "none",
        marker: 5
      })
    }
    return {
      title: `${title(suite)}`,
      xLabel: `${title(r.chosenOn)} ${METRIC_NAME[metric]}`,
      yLabel: METRIC_NAME[metric],
      series,
      yRange: [0, 1] as const,
      xRange: [lo, hi] as const,
      xPercent: true,
      yPercent: true
    }
  })
}

/** OOD accuracy against KL from the reference: every point of every method. */
const klPanels = (r: FrontierResults, suites: ReadonlyArray<SuiteLabel>, metric: FrontierMetric): Panel[] => {
  const title = (name: string) => suites.find((s) => s.name === name)?.title ?? name
  return r.spec.ood.map((suite) => {
    const series: Series[] = r.spec.methods.map((method, m) => ({
      label: method,
      colour: PALETTE[m % PALETTE.length]!,
      points: r.points.filter((p) => p.method === method && p.kl !== null && p.kl > 0).map((p) => [p.kl!, p.values[metric][suite]!.mean] as const),
      line: "none",
      marker: 3
    }))
    if (r.start !== undefined && r.start.kl !== null && r.start.kl > 0) {
      series.push({ label: `${r.start.arm} (start)`, colour: BLACK, points: [[r.start.kl!, r.start.values[metric][suite]!.mean]], line: "none", marker: 5 })
    }
    return {
      title: `${title(suite)} vs KL`,
      xLabel: "KL from the reference, nats (log scale)",
      yLabel: METRIC_NAME[metric],
      series,
      yRange: [0, 1] as const,
      xScale: "log" as const,
      yPercent: true
    }
  })
}

/** Computes the frontier comparison of a run folder's records and writes its CSV and plots; returns it. */
export const writeFrontier = async (
  runDir: string,
  meta: FrontierMeta,
  evals: ReadonlyArray<EvalRecord>,
  kls: ReadonlyArray<KlRecord>,
  seeds: ReadonlyArray<number>,
  suites: ReadonlyArray<SuiteLabel>
): Promise<FrontierResults> => {
  const r = frontierResults({
    spec: meta.spec,
    evals,
    kls,
    methodOf: meta.methodOf,
    seeds,
    routeGroup: meta.routeGroup,
    ...(meta.klReference === undefined ? {} : { klReference: meta.klReference })
  })
  const answers = [...(r.start === undefined ? [] : [r.start]), ...r.finals].flatMap((p) =>
    [r.spec.indist, ...r.spec.ood].flatMap((suite) => {
      const breakdown = finalBreakdown(runDir, evals, p.arm, suite, r.seeds)
      return breakdown === undefined ? [] : [{ arm: p.arm, method: p.method, suite, breakdown }]
    })
  )
  if (answers.length > 0) Object.assign(r, { answers })
  writeFileAtomic(path.join(runDir, "frontier_points.csv"), frontierCsv(r))
  if (r.points.length > 0) {
    const plots = path.join(runDir, "plots")
    const withKl = r.points.some((p) => p.kl !== null)
    await Promise.all(
      METRICS.flatMap((metric) => {
        const suffix = metric === "step" ? "" : "_success"
        return [
          writeFigure(plots, `frontier${suffix}`, frontierPanels(r, suites, metric)),
          ...(withKl ? [writeFigure(plots, `frontier_kl${suffix}`, klPanels(r, suites, metric))] : [])
        ]
      })
    )
  }
  return r
}
