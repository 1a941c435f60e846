import { it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import sharp from "sharp"
import { afterAll, describe, expect } from "vitest"
import { checkDataset } from "../../../../src/plugins/dataset/check.ts"
import { synthesize } from "../../../../src/plugins/dataset/synth/generate.ts"
import { load, readMapping } from "../../../../src/plugins/dataset/virl-routes.ts"
import { oracleSuccesses } from "../../../support/oracle-walk.ts"

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
    Effect.gen(function* () {
      const dir = path.join(scratch, "nyc")
      const report = yield* synthesize({ city: "nyc", seed: 11, splits: [{ dir, routes: 8 }], panorama: small })
      expect(report.routes).toBe(8)
      const check = yield* checkDataset(dir, { deep: true })
      expect(check.problems.map(String)).toEqual([])
      expect(check.panoramas).toBe(report.panoramas)
      expect(yield* oracleSuccesses(dir, "absolute", 8)).toBe(8)
      expect(yield* oracleSuccesses(dir, "relative", 8)).toBe(8)
    })
  )

  it.effect("gives byte-identical files for the same seed and different ones for another", () =>
    Effect.gen(function* () {
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
    })
  )

  it.effect("writes a pickle of (lat, lng) tuples that our reader and Python's pickle both read", () =>
    Effect.gen(function* () {
      const dir = path.join(scratch, "a")
      const mapping = yield* readMapping(path.join(dir, "gps_pano_mapping.pkl"))
      const files = fs.readdirSync(path.join(dir, "street_views")).filter((f) => f.endsWith(".jpg"))
      expect(mapping.length).toBe(files.length)
      const routes = JSON.parse(fs.readFileSync(path.join(dir, "route_infos.json"), "utf8"))[0]
      const keys = new Set(mapping.map((m) => `${m.geocode[0]},${m.geocode[1]}`))
      for (const route of routes) for (const g of route.route_results.geocode_list) expect(keys.has(`${g[0]},${g[1]}`)).toBe(true)
      if (!fs.existsSync("/usr/bin/python3")) return
      const py = spawnSync(
        "/usr/bin/python3",
        ["-c", "import pickle,sys,json; m=pickle.load(open(sys.argv[1],'rb')); print(json.dumps(sorted([[k[0],k[1],v] for k,v in m.items()])))", path.join(dir, "gps_pano_mapping.pkl")],
        { encoding: "utf8" }
      )
      expect(py.status).toBe(0)
      const fromPython = JSON.parse(py.stdout) as Array<[number, number, string]>
      const ours = mapping.map((m) => [m.geocode[0], m.geocode[1], m.panoId]).sort((p, q) => (p[0] as number) - (q[0] as number) || (p[1] as number) - (q[1] as number))
      expect(fromPython).toEqual(ours)
    })
  )

  it.effect("draws the two cities in different palettes", () =>
    Effect.gen(function* () {
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
    })
  )
})
