import { describe, expect, it } from "vitest"
import { curves } from "../../src/app/report.ts"
import { meanInterval } from "../../src/app/statistics.ts"
import type { EvalRecord } from "../../src/app/run-folder.ts"
import { figureCsv, renderFigure } from "../../src/app/plot.ts"

const record = (arm: string, seed: number, step: number, total: number, samples: number, acc: number): EvalRecord =>
  ({ arm, seed, step, total, samples, suite: "indist", metrics: { per_step_accuracy: acc } }) as unknown as EvalRecord

describe("figures", () => {
  const panel = {
    title: "Rule OOD",
    xLabel: "post-training samples",
    yLabel: "per-step accuracy",
    yRange: [0, 1] as const,
    yPercent: true,
    series: [
      { label: "sft", colour: [31, 119, 180] as const, points: [[0, 0.5], [100, 0.7]] as const, band: [[0.4, 0.6], [0.65, 0.75]] as const },
      { label: "rl", colour: [214, 39, 40] as const, points: [[0, 0.5], [50, 0.55]] as const, line: "steps" as const }
    ]
  }

  it("are SVG with the panel's title, axis titles and legend, a PNG of it, and the CSV of every point", async () => {
    const f = await renderFigure([panel])
    expect(f.svg).toMatch(/^<svg/)
    for (const text of ["Rule OOD", "post-training samples", "per-step accuracy", "sft", "rl", "100%"]) expect(f.svg).toContain(`>${text}<`)
    expect(f.png.subarray(1, 4).toString()).toBe("PNG")
    expect(f.csv).toBe(
      "panel,series,x,y,low,high\nRule OOD,sft,0,0.5,0.4,0.6\nRule OOD,sft,100,0.7,0.65,0.75\nRule OOD,rl,0,0.5,,\nRule OOD,rl,50,0.55,,\n"
    )
    expect(figureCsv([{ ...panel, title: 'a, "b"' }]).split("\n")[1]).toBe('"a, ""b""",sft,0,0.5,0.4,0.6')
  })

  it("join a trade-off curve's points in the order given, not sorted by x", async () => {
    const f = await renderFigure([{ title: "t", xLabel: "x", yLabel: "y", series: [{ label: "rl", colour: [214, 39, 40], points: [[0, 0], [2, 1], [1, 2]] }] }])
    const d = /class="mark-line role-mark[^"]*"[^>]*>\s*<path[^>]* d="([^"]+)"/.exec(f.svg)?.[1]
    expect(d).toBeDefined()
    const xs = [...d!.matchAll(/[ML]([-\d.]+),/g)].map((m) => Number(m[1]))
    expect(xs).toHaveLength(3)
    // the second point (x = 2) lies right of the third (x = 1)
    expect(xs[1]).toBeGreaterThan(xs[2])
  })

  it("draw post-training from the base's end, with the 95 % interval over seeds as the band", () => {
    // base pretrained on 80,000 samples; sft continues it
    const evals = [
      record("base", 1, 1, 1, 80_000, 0.6),
      record("base", 2, 1, 1, 80_000, 0.62),
      record("sft", 1, 1, 2, 80_100, 0.7),
      record("sft", 2, 1, 2, 80_100, 0.8),
      record("sft", 1, 2, 2, 80_200, 0.75),
      record("sft", 2, 2, 2, 80_200, 0.85)
    ]
    const [base, sft] = curves(evals, ["base", "sft"], { name: "indist", title: "In-distribution" }, { sft: "base" })
    expect(base.points).toEqual([[0, 0.61]])
    expect(sft.points.map((p) => p[0])).toEqual([0, 100, 200])
    expect(sft.points[1][1]).toBeCloseTo(0.75, 12)
    // two seeds: t(1) = 12.706, std 0.0707…, half-width 12.706 · 0.0707 / √2
    const [lo, hi] = sft.band![1]
    expect(hi - 0.75).toBeCloseTo(12.7062 * Math.SQRT1_2 * 0.1 / Math.SQRT2, 4)
    expect(lo).toBeCloseTo(0.75 - (hi - 0.75), 12)
    expect(meanInterval([0.3])).toEqual([0.3, 0.3])
  })
})
