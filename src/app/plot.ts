import sharp from "sharp"
import { GLYPH_HEIGHT, hasGlyph, textBitmap } from "../plugins/dataset/synth/font.ts"

/**
 * Line charts as PNG, drawn into an RGB buffer with the project's bitmap font: no canvas or
 * font library, the same pixels on every machine.
 */
export interface Series {
  readonly label: string
  readonly colour: readonly [number, number, number]
  readonly points: ReadonlyArray<readonly [number, number]>
  /** Half-width of a band around each point (spread over seeds). */
  readonly spread?: ReadonlyArray<number>
  /** A shaded interval [low, high] at each point (an interval of the curve). */
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
  /** Default: from 0 (or below) to the largest x. */
  readonly xRange?: readonly [number, number]
}

export const PALETTE: ReadonlyArray<readonly [number, number, number]> = [
  [31, 119, 180],
  [214, 39, 40],
  [44, 160, 44],
  [255, 127, 14],
  [148, 103, 189],
  [140, 86, 75],
  [23, 190, 207],
  [127, 127, 127]
]

class Canvas {
  readonly rgb: Uint8Array
  constructor(
    readonly width: number,
    readonly height: number
  ) {
    this.rgb = new Uint8Array(width * height * 3).fill(255)
  }
  pixel(x: number, y: number, c: readonly [number, number, number], alpha = 1): void {
    x = Math.round(x)
    y = Math.round(y)
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return
    const o = (y * this.width + x) * 3
    for (let k = 0; k < 3; k++) this.rgb[o + k] = this.rgb[o + k] * (1 - alpha) + c[k] * alpha
  }
  line(x0: number, y0: number, x1: number, y1: number, c: readonly [number, number, number], thickness = 1): void {
    const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)))
    for (let i = 0; i <= steps; i++) {
      const x = x0 + ((x1 - x0) * i) / steps
      const y = y0 + ((y1 - y0) * i) / steps
      for (let dx = -(thickness >> 1); dx <= thickness >> 1; dx++) for (let dy = -(thickness >> 1); dy <= thickness >> 1; dy++) this.pixel(x + dx, y + dy, c)
    }
  }
  text(x: number, y: number, text: string, c: readonly [number, number, number] = [0, 0, 0], scale = 1): number {
    const bitmap = textBitmap([...text].filter(hasGlyph).join(""))
    for (let j = 0; j < bitmap.height * scale; j++) {
      for (let i = 0; i < bitmap.width * scale; i++) {
        if (bitmap.bits[Math.floor(j / scale) * bitmap.width + Math.floor(i / scale)] === 1) this.pixel(x + i, y + j, c)
      }
    }
    return bitmap.width * scale
  }
}

const textWidth = (text: string, scale = 1) => textBitmap([...text].filter(hasGlyph).join("")).width * scale

const niceTicks = (lo: number, hi: number, count = 5): number[] => {
  const span = hi - lo || 1
  const step = 10 ** Math.floor(Math.log10(span / count))
  const unit = [1, 2, 5, 10].map((m) => m * step).find((u) => span / u <= count) ?? step * 10
  const ticks: number[] = []
  for (let t = Math.ceil(lo / unit) * unit; t <= hi + 1e-9; t += unit) ticks.push(Number(t.toPrecision(6)))
  return ticks
}

const formatTick = (v: number): string => (Math.abs(v) >= 1000 ? `${Number((v / 1000).toPrecision(3))}K` : String(Number(v.toPrecision(3))))

const drawPanel = (canvas: Canvas, left: number, top: number, width: number, height: number, panel: Panel): void => {
  const pad = { left: 56, right: 12, top: 48, bottom: 40 }
  const x0 = left + pad.left
  const y0 = top + pad.top
  const w = width - pad.left - pad.right
  const h = height - pad.top - pad.bottom
  canvas.text(left + Math.max(0, (width - textWidth(panel.title, 2)) / 2), top + 6, panel.title, [0, 0, 0], 2)
  const xs = panel.series.flatMap((s) => s.points.map((p) => p[0]))
  const ys = panel.series.flatMap((s) => s.points.map((p) => p[1]))
  const [xLo, xHi] = panel.xRange ?? [Math.min(0, ...xs), Math.max(1, ...xs)]
  const [yLo, yHi] = panel.yRange ?? [Math.min(0, ...ys), Math.max(1, ...ys)]
  const px = (x: number) => x0 + ((x - xLo) / (xHi - xLo || 1)) * w
  const py = (y: number) => y0 + h - ((y - yLo) / (yHi - yLo || 1)) * h
  for (const t of niceTicks(yLo, yHi)) {
    canvas.line(x0, py(t), x0 + w, py(t), [230, 230, 230])
    const label = formatTick(t)
    canvas.text(x0 - 6 - textWidth(label), py(t) - 3, label, [60, 60, 60])
  }
  for (const t of niceTicks(xLo, xHi, 4)) {
    canvas.line(px(t), y0 + h, px(t), y0 + h + 4, [0, 0, 0])
    const label = formatTick(t)
    canvas.text(px(t) - textWidth(label) / 2, y0 + h + 8, label, [60, 60, 60])
  }
  canvas.line(x0, y0, x0, y0 + h, [0, 0, 0])
  canvas.line(x0, y0 + h, x0 + w, y0 + h, [0, 0, 0])
  canvas.text(x0 + (w - textWidth(panel.xLabel)) / 2, y0 + h + 24, panel.xLabel, [0, 0, 0])
  canvas.text(left + 4, y0 - 10, panel.yLabel, [0, 0, 0])
  for (const s of panel.series) {
    if (s.band !== undefined) {
      for (let i = 1; i < s.points.length; i++) {
        const [xa, xb] = [px(s.points[i - 1][0]), px(s.points[i][0])]
        const [a, b] = [s.band[i - 1], s.band[i]]
        if (a === undefined || b === undefined) continue
        // each column once: a segment stops short of where the next begins
        const last = i === s.points.length - 1 ? Math.round(xb) : Math.round(xb) - 1
        for (let x = Math.round(xa); x <= last; x++) {
          const t = xb === xa ? 0 : (x - xa) / (xb - xa)
          const lo = py(Math.max(yLo, a[0] + (b[0] - a[0]) * t))
          const hi = py(Math.min(yHi, a[1] + (b[1] - a[1]) * t))
          for (let y = Math.round(hi); y <= Math.round(lo); y++) canvas.pixel(x, y, s.colour, 0.18)
        }
      }
    }
  }
  for (const s of panel.series) {
    if (s.spread !== undefined) {
      s.points.forEach(([x, y], i) => {
        const d = s.spread![i] ?? 0
        if (d > 0) canvas.line(px(x), py(Math.min(yHi, y + d)), px(x), py(Math.max(yLo, y - d)), s.colour, 1)
      })
    }
    const line = s.line ?? "straight"
    for (let i = 1; i < s.points.length && line !== "none"; i++) {
      const [a, b] = [s.points[i - 1], s.points[i]]
      if (line === "steps") {
        canvas.line(px(a[0]), py(a[1]), px(a[0]), py(b[1]), s.colour, 3)
        canvas.line(px(a[0]), py(b[1]), px(b[0]), py(b[1]), s.colour, 3)
      } else canvas.line(px(a[0]), py(a[1]), px(b[0]), py(b[1]), s.colour, 3)
    }
    const r = s.marker ?? 3
    if (r > 0) {
      for (const [x, y] of s.points) {
        for (let dx = -r; dx <= r; dx++) for (let dy = -r; dy <= r; dy++) if (dx * dx + dy * dy <= r * r) canvas.pixel(px(x) + dx, py(y) + dy, s.colour)
      }
    }
  }
  // the legend runs along the top margin, clear of the data
  let lx = x0 + w
  for (const s of [...panel.series].reverse().filter((s) => s.legend !== false)) {
    lx -= textWidth(s.label) + 30
    canvas.line(lx, top + 30 + GLYPH_HEIGHT / 2, lx + 18, top + 30 + GLYPH_HEIGHT / 2, s.colour, 3)
    canvas.text(lx + 22, top + 30, s.label, [0, 0, 0])
  }
}

/** Panels side by side in one PNG. */
export const renderPlot = (panels: ReadonlyArray<Panel>, panelWidth = 420, height = 320): Promise<Buffer> => {
  const canvas = new Canvas(panelWidth * panels.length, height)
  panels.forEach((p, i) => drawPanel(canvas, i * panelWidth, 0, panelWidth, height, p))
  return sharp(canvas.rgb, { raw: { width: canvas.width, height: canvas.height, channels: 3 } }).png().toBuffer()
}
