import * as path from "node:path"
import { writeFileAtomic } from "../core/files.ts"
import { frontierResults } from "./frontier.ts"
import type { Comparison, Estimate, FrontierResults } from "./frontier-results.ts"
import { PALETTE, type Panel, type Series, writeFigure } from "./plot.ts"
import type { EvalRecord, FrontierMeta, KlRecord, SuiteLabel } from "./run-folder.ts"

const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(1) : "—")
const interval = (
  e: Estimate
) => (e.defined === 0 ? "—" : `${pct(e.mean)} [${pct(e.lo)}, ${pct(e.hi)}]${e.defined < 0.95 ? ` (${Math.round(100 * e.defined)} % of draws)` : ""}`)
const signed = (e: Estimate) => {
  if (e.defined === 0 || !Number.isFinite(e.mean)) return "—"
  const s = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(100 * x).toFixed(1)}`
  const verdict = e.lo > 0 ? " ▲" : e.hi < 0 ? " ▼" : ""
  return `${s(e.mean)} [${s(e.lo)}, ${s(e.hi)}]${verdict}${e.defined < 0.95 ? ` (${Math.round(100 * e.defined)} % of draws)` : ""}`
}

const comparisonRows = (rows: ReadonlyArray<Comparison>, title: (suite: string) => string) =>
  rows.map((c) => `| ${title(c.suite)} | ${c.label} | ${c.a} ${interval(c.a_value)} | ${c.b} ${interval(c.b_value)} | ${signed(c.difference)} |`)

/** The frontier comparison as Markdown: every configuration, matched comparisons, the selected points. */
export const frontierMarkdown = (r: FrontierResults, suites: ReadonlyArray<SuiteLabel>): string => {
  const title = (name: string) => suites.find((s) => s.name === name)?.title ?? name
  const ood = r.spec.ood
  const out: string[] = [
    "## Frontiers",
    "",
    `Per-step accuracy, percent: mean over seeds ${
      r.seeds.join(", ")
    } [95 % bootstrap interval over seeds and routes, ${r.replicates} draws, paired across methods; ` +
    `routes per suite: ${Object.entries(r.routes).map(([s, n]) => `${title(s)} ${n}`).join(", ")}]. ▲/▼: the interval excludes 0.`,
    ""
  ]
  if (r.notes.length > 0) out.push(...r.notes.map((n) => `- ${n}`), "")
  out.push(
    `Configurations per method: ${
      Object.entries(r.configurations).map(([m, cs]) => `${m} ${cs.length}`).join(", ")
    }, each evaluated at every evaluation point.`,
    ""
  )
  const head = `| point | step | ${title(r.spec.indist)} | ${ood.map(title).join(" | ")} | KL |`
  const rule = `|---|---:|---:|${ood.map(() => "---:").join("|")}|---:|`
  const row = (name: string, p: { step: number; total: number; indist: Estimate; ood: Readonly<Record<string, Estimate>>; kl: number | null }) =>
    `| ${name} | ${p.step}/${p.total} | ${interval(p.indist)} | ${ood.map((s) => interval(p.ood[s]!)).join(" | ")} | ${p.kl === null ? "—" : p.kl.toFixed(2)} |`
  out.push("### Every configuration at every evaluation point", "", head, rule)
  if (r.reference !== undefined) out.push(row(`${r.reference.arm} (reference)`, r.reference))
  if (r.start !== undefined) out.push(row(`${r.start.arm} (start)`, r.start))
  for (const p of r.points) out.push(row(p.arm, p))
  out.push("")
  const section = (heading: string, about: string, level: string, rows: ReadonlyArray<Comparison>) =>
    rows.length === 0 ? [] : [heading, "", about, "", `| suite | ${level} | a | b | a − b |`, "|---|---|---|---|---:|", ...comparisonRows(rows, title), ""]
  out.push(
    ...section(
      "### At matched in-distribution accuracy",
      "Each method's frontier: the best OOD accuracy any of its points reaches at that in-distribution accuracy or more.",
      "matched at",
      r.matched_indist
    ),
    ...section(
      "### At matched KL from the reference",
      "Mean OOD accuracy of each method's points whose KL lies in the band (four bands, equal in log KL, over the range both methods cover).",
      "band",
      r.matched_kl
    )
  )
  if (r.selected.length > 0) {
    const rule = r.spec.select ?? { by: "indist", at: "any" }
    out.push(
      `### One point per method, chosen by the rule declared before the run (highest ${
        rule.by === "indist" ? "in-distribution accuracy" : rule.by
      }, ${rule.at} points)`,
      "",
      `| method | chosen | ${title(r.spec.indist)} | ${ood.map((s) => `${title(s)} (gain over the start)`).join(" | ")} | KL |`,
      `|---|---|---:|${ood.map(() => "---:").join("|")}|---:|`,
      ...r.selected.map(
        (s) =>
          `| ${s.method} | ${s.arm} step ${s.step} | ${interval(s.indist)} | ${
            ood.map((u) => `${interval(s.ood[u]!)} (${signed(s.gain[u]!)})`).join(" | ")
          } | ${s.kl === null ? "—" : s.kl.toFixed(2)} |`
      ),
      "",
      "| suite | compared | a | b | a − b |",
      "|---|---|---|---|---:|",
      ...comparisonRows(r.selected_differences, title),
      ""
    )
  }
  if (r.start !== undefined && Object.keys(r.best_gain).length > 0) {
    const all = [r.spec.indist, ...ood]
    out.push(
      `### Above the start anywhere? The most any point of a method gains over ${r.start.arm}`,
      "",
      `| method | ${all.map(title).join(" | ")} |`,
      `|---|${all.map(() => "---:").join("|")}|`,
      ...Object.entries(r.best_gain).map(([m, g]) => `| ${m} | ${all.map((s) => signed(g[s]!)).join(" | ")} |`),
      "",
      "A maximum over every point of a method leans upward; its interval redraws the maximum.",
      ""
    )
  }
  if (r.factors.length > 0 && r.spec.factors !== undefined) {
    const f = r.spec.factors
    out.push(
      `### What the visual shift is made of (drop from ${title(r.spec.indist)}, chosen points)`,
      "",
      `| method | ${title(f.geometry)} (another grid angle) | ${title(f.appearance)} (another look) | ${title(f.both)} (both) |`,
      "|---|---:|---:|---:|",
      ...r.factors.map((x) => `| ${x.method} | ${signed(x.geometry)} | ${signed(x.appearance)} | ${signed(x.both)} |`),
      ""
    )
  }
  return out.join("\n")
}

/** Every point as CSV: method, arm, step, samples, KL, in-distribution and OOD accuracies with their intervals. */
export const frontierCsv = (r: FrontierResults): string => {
  const suites = [r.spec.indist, ...r.spec.ood]
  const head = ["method", "arm", "step", "total", "samples", "kl", ...suites.flatMap((s) => [s, `${s}_lo`, `${s}_hi`])]
  const rows = [...(r.reference === undefined ? [] : [r.reference]), ...(r.start === undefined ? [] : [r.start]), ...r.points].map((p) =>
    [
      p.method,
      p.arm,
      p.step,
      p.total,
      Math.round(p.samples),
      p.kl ?? "",
      ...suites.flatMap((s) => {
        const e = s === r.spec.indist ? p.indist : p.ood[s]!
        return [e.mean, e.lo, e.hi].map((x) => x.toFixed(4))
      })
    ].join(",")
  )
  return [head.join(","), ...rows, ""].join("\n")
}

const BLACK = [0, 0, 0] as const

/** OOD against in-distribution accuracy: each method's points, its frontier and the frontier's 95 % band; the start in black. */
const frontierPanels = (r: FrontierResults, suites: ReadonlyArray<SuiteLabel>): Panel[] => {
  const title = (name: string) => suites.find((s) => s.name === name)?.title ?? name
  const xs = [...r.points.map((p) => p.indist.mean), ...(r.start === undefined ? [] : [r.start.indist.mean])]
  const lo = Math.max(0, Math.min(...xs) - 0.02)
  const hi = Math.min(1, Math.max(...xs) + 0.02)
  return r.spec.ood.map((suite) => {
    const series: Series[] = r.spec.methods.flatMap((method, m) => {
      const colour = PALETTE[m % PALETTE.length]!
      const band = r.bands.find((b) => b.method === method && b.suite === suite)?.points ?? []
      const own = r.points.filter((p) => p.method === method).map((p) => [p.indist.mean, p.ood[suite]!.mean] as const)
      return [
        {
          label: `${method} band`,
          colour,
          points: band.map((b) => [b[0], b[1]] as const),
          band: band.map((b) => [b[2], b[3]] as const),
          line: "none",
          marker: 0,
          legend: false
        },
        { label: `${method} points`, colour, points: own, line: "none", marker: 2, legend: false },
        { label: method, colour, points: r.frontiers[method]?.[suite] ?? [], line: "steps", marker: 3 }
      ] satisfies Series[]
    })
    if (r.start !== undefined) {
      series.push({ label: `${r.start.arm} (start)`, colour: BLACK, points: [[r.start.indist.mean, r.start.ood[suite]!.mean]], line: "none", marker: 5 })
    }
    return {
      title: `${title(suite)}: frontier`,
      xLabel: `${title(r.spec.indist)} per-step accuracy`,
      yLabel: "per-step accuracy",
      series,
      yRange: [0, 1] as const,
      xRange: [lo, hi] as const,
      xPercent: true,
      yPercent: true
    }
  })
}

/** OOD accuracy against KL from the reference: every point of every method. */
const klPanels = (r: FrontierResults, suites: ReadonlyArray<SuiteLabel>): Panel[] => {
  const title = (name: string) => suites.find((s) => s.name === name)?.title ?? name
  return r.spec.ood.map((suite) => {
    const series: Series[] = r.spec.methods.map((method, m) => ({
      label: method,
      colour: PALETTE[m % PALETTE.length]!,
      points: r.points.filter((p) => p.method === method && p.kl !== null && p.kl > 0).map((p) => [p.kl!, p.ood[suite]!.mean] as const),
      line: "none",
      marker: 3
    }))
    if (r.start !== undefined && r.start.kl !== null && r.start.kl > 0) {
      series.push({ label: `${r.start.arm} (start)`, colour: BLACK, points: [[r.start.kl!, r.start.ood[suite]!.mean]], line: "none", marker: 5 })
    }
    return {
      title: `${title(suite)} vs KL`,
      xLabel: "KL from the reference, nats (log scale)",
      yLabel: "per-step accuracy",
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
  writeFileAtomic(path.join(runDir, "frontier_points.csv"), frontierCsv(r))
  if (r.points.length > 0) {
    await Promise.all([
      writeFigure(path.join(runDir, "plots"), "frontier", frontierPanels(r, suites)),
      ...(r.points.some((p) => p.kl !== null) ? [writeFigure(path.join(runDir, "plots"), "frontier_kl", klPanels(r, suites))] : [])
    ])
  }
  return r
}
