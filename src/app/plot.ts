import sharp from "sharp"
import { writeFileAtomic } from "../core/files.ts"
import * as path from "node:path"

/**
 * Figures of a run: line and scatter charts written as SVG, PNG and the CSV of their points.
 * Drawn with Vega-Lite (a declarative grammar of graphics, compiled to Vega and rendered
 * headless in Node to SVG; no browser or canvas), the PNG rasterised from that SVG by sharp —
 * one look wherever a figure appears (README, the run folder, the viewer). Vega-Lite because it
 * renders in Node without a DOM, keeps the figure as data (the spec) and is maintained by the
 * University of Washington's Interactive Data Lab; Observable Plot needs a DOM to render.
 */
export interface Series {
  readonly label: string
  readonly colour: readonly [number, number, number]
  readonly points: ReadonlyArray<readonly [number, number]>
  /** A shaded interval [low, high] at each point (e.g. a 95 % interval over seeds). */
  readonly band?: ReadonlyArray<readonly [number, number]>
  /** How points are joined: straight lines (default), a frontier's steps, or not at all (a scatter). */
  readonly line?: "straight" | "steps" | "none"
  /** Radius of the point markers in pixels (default 3; 0 for none). */
  readonly marker?: number
  /** Listed in the legend (default true). */
  readonly legend?: boolean
}

export interface Panel {
  readonly title: string
  readonly xLabel: string
  readonly yLabel: string
  readonly series: ReadonlyArray<Series>
  readonly yRange?: readonly [number, number]
  /** Default: fitted to the data. */
  readonly xRange?: readonly [number, number]
  /** Default: linear. */
  readonly xScale?: "linear" | "log"
  /** Axis labels as percentages (for accuracies in [0, 1]). */
  readonly yPercent?: boolean
  readonly xPercent?: boolean
}

export const PALETTE: ReadonlyArray<readonly [number, number, number]> = [
  [31, 119, 180],
  [214, 39, 40],
  [44, 160, 44],
  [255, 127, 14],
  [148, 103, 189],
  [140, 86, 75],
  [23, 190, 207],
  [127, 127, 127],
  [188, 189, 34],
  [227, 119, 194],
  [0, 0, 128],
  [255, 187, 120]
]

const hex = (c: readonly [number, number, number]) => `#${c.map((v) => v.toString(16).padStart(2, "0")).join("")}`

const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"

interface Row {
  readonly panel: string
  readonly series: string
  /** The point's place in its series: lines join points in this order, not by x. */
  readonly i: number
  readonly x: number
  readonly y: number
  readonly low: number | null
  readonly high: number | null
}

/**
 * A figure's rows. Bands are clipped to the panel's y range: a t-interval over two seeds spans
 * far past [0, 1], and Vega took minutes to lay out areas that far outside their scale's domain.
 */
const rowsOf = (panel: Panel): Row[] => {
  const [lo, hi] = panel.yRange ?? [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY]
  const clip = (v: number | undefined) => (v === undefined ? null : Math.min(hi, Math.max(lo, v)))
  return panel.series.flatMap((s) =>
    s.points.map(([x, y], i) => ({ panel: panel.title, series: s.label, i, x, y, low: clip(s.band?.[i]?.[0]), high: clip(s.band?.[i]?.[1]) }))
  )
}

/** One panel as a Vega-Lite layered chart: bands under lines under points, colours fixed per series. */
const panelSpec = (panel: Panel, width: number, height: number) => {
  const rows = rowsOf(panel)
  const labels = [...new Set(panel.series.map((s) => s.label))]
  const colours = labels.map((l) => hex(panel.series.find((s) => s.label === l)!.colour))
  const inLegend = [...new Set(panel.series.filter((s) => s.legend !== false).map((s) => s.label))]
  const x = {
    field: "x",
    type: "quantitative",
    title: panel.xLabel,
    scale: {
      // a log scale has no zero: Vega-Lite warns when one is given
      ...(panel.xScale === "log" ? {} : { zero: false }),
      nice: panel.xRange === undefined && panel.xScale !== "log",
      type: panel.xScale ?? "linear",
      ...(panel.xRange === undefined ? {} : { domain: [...panel.xRange] })
    },
    axis: panel.xPercent === true ? { format: ".0%" } : {}
  }
  const y = {
    field: "y",
    type: "quantitative",
    title: panel.yLabel,
    scale: { zero: false, ...(panel.yRange === undefined ? {} : { domain: [...panel.yRange] }) },
    axis: panel.yPercent === true ? { format: ".0%" } : {}
  }
  const color = {
    field: "series",
    type: "nominal",
    scale: { domain: labels, range: colours },
    legend: inLegend.length === 0 ? null : { values: inLegend, title: null, orient: "bottom", direction: "horizontal", columns: 4 }
  }
  const seriesIn = (pick: (s: Series) => boolean) => ({ filter: { field: "series", oneOf: panel.series.filter(pick).map((s) => s.label) } })
  const layers: unknown[] = []
  if (panel.series.some((s) => s.band !== undefined)) {
    layers.push({
      transform: [seriesIn((s) => s.band !== undefined), { filter: "datum.low !== null && datum.high !== null" }],
      mark: { type: "area", opacity: 0.18, interpolate: "linear" },
      encoding: { x, y: { ...y, field: "low" }, y2: { field: "high" }, color, detail: { field: "series" } }
    })
  }
  for (const [shape, interpolate] of [["straight", "linear"], ["steps", "step-after"]] as const) {
    if (!panel.series.some((s) => (s.line ?? "straight") === shape)) continue
    layers.push({
      transform: [seriesIn((s) => (s.line ?? "straight") === shape)],
      mark: { type: "line", strokeWidth: 2, interpolate },
      // in the order of the points (a trade-off curve doubles back in x), not sorted by x
      encoding: { x, y, color, detail: { field: "series" }, order: { field: "i", type: "quantitative" } }
    })
  }
  for (const radius of [...new Set(panel.series.map((s) => s.marker ?? 3))].filter((r) => r > 0)) {
    layers.push({
      transform: [seriesIn((s) => (s.marker ?? 3) === radius)],
      mark: { type: "circle", size: Math.PI * radius * radius * 1.6, opacity: 0.9 },
      encoding: { x, y, color }
    })
  }
  return { title: panel.title, width, height, data: { values: rows }, layer: layers }
}

/** The Vega-Lite spec of a figure: its panels side by side, three to a row. */
export const figureSpec = (panels: ReadonlyArray<Panel>, width = 360, height = 260) => ({
  $schema: "https://vega.github.io/schema/vega-lite/v6.json",
  background: "white",
  padding: 8,
  config: {
    font: FONT,
    title: { fontSize: 14, fontWeight: "bold", anchor: "start" },
    axis: { labelFontSize: 12, titleFontSize: 12, titleFontWeight: "normal", grid: true, gridColor: "#e6e6e6" },
    // a y title longer than the plot is tall would push the panel's title up, out of line with its neighbours'
    axisY: { titleLimit: 240 },
    legend: { labelFontSize: 12, symbolType: "circle", symbolOpacity: 1 },
    view: { stroke: "#bbbbbb" }
  },
  columns: Math.min(3, panels.length),
  concat: panels.map((p) => panelSpec(p, width, height)),
  resolve: { scale: { color: "independent" } }
})

/** A figure's points as CSV: panel, series, x, y and the band's bounds where it has one. */
export const figureCsv = (panels: ReadonlyArray<Panel>): string => {
  const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s)
  const lines = ["panel,series,x,y,low,high"]
  for (const r of panels.flatMap(rowsOf)) lines.push([quote(r.panel), quote(r.series), r.x, r.y, r.low ?? "", r.high ?? ""].join(","))
  return `${lines.join("\n")}\n`
}

export interface Figure {
  readonly svg: string
  readonly png: Buffer
  readonly csv: string
}

export const renderFigure = async (panels: ReadonlyArray<Panel>, width?: number, height?: number): Promise<Figure> => {
  // loaded when a figure is drawn, not when the CLI starts (a third of a second)
  const [vega, vl] = await Promise.all([import("vega"), import("vega-lite")])
  const compiled = vl.compile(figureSpec(panels, width, height) as unknown as import("vega-lite").TopLevelSpec).spec
  const view = new vega.View(vega.parse(compiled), { renderer: "none" })
  const svg = await view.toSVG()
  view.finalize()
  // twice the SVG's size: sharp reads SVG at 72 dpi
  const png = await sharp(Buffer.from(svg), { density: 144 }).png().toBuffer()
  return { svg, png, csv: figureCsv(panels) }
}

/**
 * Writes DIR/NAME.svg, NAME.png and NAME.csv, each atomically; panels without a point are left
 * out (Vega cannot lay out an empty one), and a figure with none is not written.
 */
export const writeFigure = async (dir: string, name: string, panels: ReadonlyArray<Panel>, width?: number, height?: number): Promise<void> => {
  const drawn = panels.filter((p) => p.series.some((s) => s.points.length > 0))
  if (drawn.length === 0) return
  const figure = await renderFigure(drawn, width, height)
  writeFileAtomic(path.join(dir, `${name}.svg`), figure.svg)
  writeFileAtomic(path.join(dir, `${name}.png`), figure.png)
  writeFileAtomic(path.join(dir, `${name}.csv`), figure.csv)
}
