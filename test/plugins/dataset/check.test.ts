import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { checkDataset } from "../../../src/plugins/dataset/check.ts"
import { load } from "../../../src/plugins/dataset/virl-routes.ts"
import { FIXTURE_DATASET } from "../../support/fixtures.ts"

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "virl-check-"))
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }))

const brokenCopy = (): string => {
  const dir = path.join(scratch, "broken")
  fs.cpSync(FIXTURE_DATASET, dir, { recursive: true })
  const file = path.join(dir, "route_infos.json")
  const [routes, count] = JSON.parse(fs.readFileSync(file, "utf8"))
  delete routes[1].dest_place
  routes[2].milestone_info = routes[2].milestone_info.replace(/"to_next_intersection_heading": "[^"]*"/, '"to_next_intersection_heading": "east"')
  routes[3].route_results.geocode_list[0] = [41.5, -72.0]
  fs.writeFileSync(file, JSON.stringify([routes, count]))
  const views = path.join(dir, "street_views")
  const jpgs = fs.readdirSync(views).filter((f) => f.endsWith(".jpg")).sort()
  fs.rmSync(path.join(views, jpgs[0]))
  fs.writeFileSync(path.join(views, jpgs[1]), "not a jpeg")
  fs.writeFileSync(path.join(views, jpgs[2].replace(".jpg", ".metadata.json")), '{"pano_id": "x"}')
  return dir
}

describe("virl data check", () => {
  it("finds nothing wrong with the fixture dataset", async () => {
    const report = await Effect.runPromise(checkDataset(FIXTURE_DATASET))
    expect(report.problems.map(String)).toEqual([])
    expect(report.routes).toBe(10)
  })

  it("names every problem of a broken copy at once", async () => {
    const report = await Effect.runPromise(checkDataset(brokenCopy()))
    const text = report.problems.map(String)
    expect(text, text.join("\n")).toHaveLength(6)
    expect(text.some((t) => /route 1\).*dest_place/.test(t))).toBe(true)
    expect(text.some((t) => /route 2: milestone_info block 1 to_next_intersection_heading/.test(t))).toBe(true)
    expect(text.some((t) => /route 3: route_results\.geocode_list\[0\].*no panorama within 20 m/.test(t))).toBe(true)
    expect(text.some((t) => /\.jpg: missing panorama image/.test(t))).toBe(true)
    expect(text.some((t) => /\.jpg: cannot decode image/.test(t))).toBe(true)
    expect(text.some((t) => /metadata\.json \(rotation\)/.test(t))).toBe(true)
  })

  it("refuses to load a dataset whose pickle is unreadable, naming the file", async () => {
    const dir = path.join(scratch, "bad-pickle")
    fs.cpSync(FIXTURE_DATASET, dir, { recursive: true })
    fs.writeFileSync(path.join(dir, "gps_pano_mapping.pkl"), Buffer.from([0x80, 0x04, 0x95, 0x00]))
    const error = await Effect.runPromise(Effect.flip(load(dir)))
    expect(String(error)).toMatch(/gps_pano_mapping\.pkl: unreadable pickle/)
  })
})
