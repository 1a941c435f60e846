import { it } from "@effect/vitest"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import sharp from "sharp"
import { afterAll, describe, expect } from "vitest"
import { checkDataset } from "../../../../src/plugins/dataset/check.ts"
import { synthesize } from "../../../../src/plugins/dataset/synth/generate.ts"
import { load, readMapping } from "../../../../src/plugins/dataset/virl-routes.ts"
import { pickleMapping } from "../../../../src/plugins/dataset/synth/pickle.ts"
import { OUR_MAPPING } from "../../../support/pickle-mapping.ts"
import { oracleSuccesses } from "../../../support/oracle-walk.ts"

/** Python's float.hex() text back to the number. */
const pythonHex = (text: string): number => {
  const m = /^(-?)0x([01])\.([0-9a-f]*)p([+-]\d+)$/.exec(text)
  if (m === null) throw new Error(`not a float.hex: ${text}`)
  const mantissa = Number(m[2]) + (m[3] === "" ? 0 : parseInt(m[3], 16) / 16 ** m[3].length)
  const value = mantissa * 2 ** Number(m[4])
  return m[1] === "-" ? -value : value
}

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "virl-synth-"))
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }))

const small = { width: 256, height: 128 }

const digest = (dir: string): Record<string, string> => {
  const out: Record<string, string> = {}
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name)
      if (entry.isDirectory()) walk(p)
      else out[path.relative(dir, p)] = createHash("sha256").update(fs.readFileSync(p)).digest("hex")
    }
  }
  walk(dir)
  return out
}

describe("virl data synth", () => {
  it.effect("writes a city that the dataset check finds clean and the ground truth walks to success in both action spaces", () =>
    Effect.gen(function*() {
      const dir = path.join(scratch, "nyc")
      const report = yield* synthesize({ city: "nyc", seed: 11, splits: [{ dir, routes: 8 }], panorama: small })
      expect(report.routes).toBe(8)
      const check = yield* checkDataset(dir, { deep: true })
      expect(check.problems.map(String)).toEqual([])
      expect(check.panoramas).toBe(report.panoramas)
      expect(yield* oracleSuccesses(dir, "absolute", 8)).toBe(8)
      expect(yield* oracleSuccesses(dir, "relative", 8)).toBe(8)
    }))

  it.effect("gives byte-identical files for the same seed and different ones for another", () =>
    Effect.gen(function*() {
      const make = (name: string, seed: number) =>
        synthesize({ city: "sf", seed, splits: [{ dir: path.join(scratch, name), routes: 3 }], panorama: { width: 128, height: 64 } }).pipe(
          Effect.map(() => digest(path.join(scratch, name)))
        )
      const a = yield* make("a", 4)
      const b = yield* make("b", 4)
      const c = yield* make("c", 5)
      expect(Object.keys(a).length).toBeGreaterThan(10)
      expect(b).toEqual(a)
      expect(c["route_infos.json"]).not.toEqual(a["route_infos.json"])
    }))

  it.effect("writes a pickle of (lat, lng) tuples that our reader reads and that covers every route point", () =>
    Effect.gen(function*() {
      const dir = path.join(scratch, "a")
      const mapping = yield* readMapping(path.join(dir, "gps_pano_mapping.pkl"))
      const files = fs.readdirSync(path.join(dir, "street_views")).filter((f) => f.endsWith(".jpg"))
      expect(mapping.length).toBe(files.length)
      const routes = JSON.parse(fs.readFileSync(path.join(dir, "route_infos.json"), "utf8"))[0]
      const keys = new Set(mapping.map((m) => `${m.geocode[0]},${m.geocode[1]}`))
      for (const route of routes) for (const g of route.route_results.geocode_list) expect(keys.has(`${g[0]},${g[1]}`)).toBe(true)
    }))

  it("writes pickles that Python reads (recorded: test/fixtures/record/python-reads-our-pickle.ts)", () => {
    const fixtures = path.resolve(import.meta.dirname, "../../../fixtures/pickles")
    // the writer's bytes are the ones Python was shown ...
    expect(pickleMapping(OUR_MAPPING).equals(fs.readFileSync(path.join(fixtures, "ours-mapping.pkl")))).toBe(true)
    // ... and Python read back every key bit for bit (float.hex) and every id
    const fromPython = JSON.parse(fs.readFileSync(path.join(fixtures, "ours-mapping.python.json"), "utf8")) as Array<[string, string, string]>
    expect(fromPython.map(([lat, lng, id]) => [pythonHex(lat), pythonHex(lng), id])).toEqual(OUR_MAPPING.map(([[lat, lng], id]) => [lat, lng, id]))
  })

  it.effect("draws the two cities in different palettes", () =>
    Effect.gen(function*() {
      const meanColour = (dir: string) =>
        Effect.promise(async () => {
          const dataset = await Effect.runPromise(load(dir))
          const first = fs.readdirSync(path.join(dir, "street_views")).filter((f) => f.endsWith(".jpg")).slice(0, 10)
          const sum = [0, 0, 0]
          for (const f of first) {
            const { data } = await sharp(path.join(dataset.root, "street_views", f)).raw().toBuffer({ resolveWithObject: true })
            for (let i = 0; i < data.length; i += 3) for (let c = 0; c < 3; c++) sum[c] += data[i + c] / (data.length / 3) / first.length
          }
          return sum
        })
      const nyc = yield* meanColour(path.join(scratch, "nyc"))
      const sf = yield* meanColour(path.join(scratch, "a"))
      // sf: a deep blue sky and warm pastel walls; nyc: grey
      expect(sf[2] - sf[0]).toBeGreaterThan(nyc[2] - nyc[0] + 10)
    }))
})
