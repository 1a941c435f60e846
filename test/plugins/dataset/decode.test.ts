import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import sharp from "sharp"
import { afterAll, describe, expect, it } from "vitest"
import type { RouteDataset } from "../../../src/core/dataset.ts"
import { decodePanorama, jpegSize, load } from "../../../src/plugins/dataset/virl-routes.ts"
import { defaultConfig } from "../../../src/plugins/environment/virl/config.ts"
import { sourceRows, viewGeometry } from "../../../src/domain/virl/projection.ts"
import { StreetViewRenderer } from "../../../src/domain/virl/street-view.ts"

const DATASET = path.resolve(import.meta.dirname, "../../fixtures/virl-reference/dataset")
const views = path.join(DATASET, "street_views")
const jpgs = fs.readdirSync(views).filter((f) => f.endsWith(".jpg")).sort()
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "virl-decode-"))
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }))

describe("decoding part of a panorama", () => {
  it("reads a JPEG's size from its frame header (baseline and progressive), nothing from other files", async () => {
    const file = path.join(views, jpgs[0]!)
    const meta = await sharp(file).metadata()
    expect(jpegSize(fs.readFileSync(file))).toEqual({ width: meta.width, height: meta.height })
    const progressive = await sharp({ create: { width: 70, height: 33, channels: 3, background: "#808080" } }).jpeg({ progressive: true }).toBuffer()
    expect(jpegSize(progressive)).toEqual({ width: 70, height: 33 })
    const png = await sharp({ create: { width: 70, height: 33, channels: 3, background: "#808080" } }).png().toBuffer()
    expect(jpegSize(png)).toBeUndefined()
    expect(jpegSize(new Uint8Array([0xff, 0xd8, 0xff]))).toBeUndefined()
  })

  it("gives the asked rows exactly as a whole decode does, zeros elsewhere; whole when the size is unknown", async () => {
    const file = path.join(views, jpgs[1]!)
    const whole = await Effect.runPromise(decodePanorama(file))
    expect(whole.rows).toBeUndefined()
    const span = { key: "t", rows: (_w: number, h: number) => ({ first: 37, last: h - 50 }) }
    const part = await Effect.runPromise(decodePanorama(file, span))
    expect([part.width, part.height, part.rows]).toEqual([whole.width, whole.height, { first: 37, last: whole.height - 50 }])
    const row = whole.width * 3
    expect(Buffer.from(part.rgb.subarray(37 * row, (whole.height - 49) * row)).equals(Buffer.from(whole.rgb.subarray(37 * row, (whole.height - 49) * row))))
      .toBe(true)
    expect(part.rgb.subarray(0, 37 * row).every((b) => b === 0)).toBe(true)
    expect(part.rgb.subarray((whole.height - 49) * row).every((b) => b === 0)).toBe(true)
    // a PNG saved as .jpg: no frame header to size it by, so decoded whole
    const png = path.join(scratch, "png.jpg")
    await sharp(file).png().toFile(png)
    const fromPng = await Effect.runPromise(decodePanorama(png, span))
    expect(fromPng.rows).toBeUndefined()
    expect(Buffer.from(fromPng.rgb).equals(Buffer.from(whole.rgb))).toBe(true)
  })

  it("a view's row span is its geometry's (or none when it wraps vertically)", () => {
    for (const [size, fov, panoHeight] of [[640, 90, 1024], [64, 90, 192], [33, 120, 200], [48, 170, 96]] as const) {
      const g = viewGeometry(size, size, fov, panoHeight * 2, panoHeight)
      expect(sourceRows(size, size, fov, panoHeight)).toEqual(g.separable ? { first: g.rowMin, last: g.rowMax } : undefined)
    }
  })

  it("renders the same grids from panoramas decoded in part as from whole ones", async () => {
    const dataset = await Effect.runPromise(load(DATASET))
    const other = await Effect.runPromise(load(DATASET))
    // the spans the renderer asks for, ignored; a root of its own, so that no grid comes from the process's cache
    const whole: RouteDataset = { ...other, root: `${other.root}-whole`, panorama: (id) => other.panorama(id) }
    for (const resolution of [224, 48]) {
      const config = defaultConfig({ resolution, language_only: false })
      const ids = jpgs.slice(0, 3).map((f) => f.slice(0, -4))
      for (const [k, id] of ids.entries()) {
        const pose = { geocode: dataset.routes[0]!.route_results.geocode_list[0]!, heading: 40 * k + 7 }
        const partial = new StreetViewRenderer({ ...dataset, exactPanorama: () => ({ geocode: pose.geocode, panoId: id }) }, config)
        const full = new StreetViewRenderer({ ...whole, exactPanorama: () => ({ geocode: pose.geocode, panoId: id }) }, config)
        const a = await Effect.runPromise(partial.render(pose))
        const b = await Effect.runPromise(full.render(pose))
        expect(Buffer.from(a.rgb).equals(Buffer.from(b.rgb))).toBe(true)
      }
    }
    // the partial decodes really were partial
    const pano = await Effect.runPromise(dataset.panorama(jpgs[0]!.slice(0, -4), { key: "view", rows: (_w, h) => sourceRows(640, 640, 90, h) }))
    expect(pano.rows).toBeDefined()
  })
})
