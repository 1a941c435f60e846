import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { readMapping } from "../../../src/plugins/dataset/virl-routes.ts"

const fixture = (name: string) => path.resolve(import.meta.dirname, "../../fixtures/pickles", name)

describe("gps_pano_mapping.pkl", () => {
  // written by Python 3.11 with numpy 2.4: {(np.float64(lat), np.float64(lng)): pano_id}
  it.each(["numpy-float64-keys-p2.pkl", "numpy-float64-keys-p4.pkl"])("reads numpy float64 keys exactly (%s)", async (name) => {
    const mapping = await Effect.runPromise(readMapping(fixture(name)))
    expect(mapping.map((m) => [m.geocode[0], m.geocode[1], m.panoId])).toEqual([
      [40.7409607, -73.9893021, "pano-a"],
      [0.1 + 0.2, -0, "pano-b"],
      [37.7855, -122.4195, "-dash-id"]
    ])
    expect(Object.is(mapping[1].geocode[1], -0)).toBe(true)
  })

  it("names the file and what is wrong with a pickle it cannot use", async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "virl-pkl-")), "gps_pano_mapping.pkl")
    fs.writeFileSync(file, Buffer.from([0x80, 0x02, 0x5d, 0x2e])) // an empty list, not a dict
    const error = await Effect.runPromise(Effect.flip(readMapping(file)))
    expect(String(error)).toContain(file)
    expect(String(error)).toContain("does not hold a dict")
    fs.rmSync(path.dirname(file), { recursive: true, force: true })
  })
})
