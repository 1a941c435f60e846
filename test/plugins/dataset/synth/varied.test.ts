import { it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect } from "vitest"
import { checkDataset } from "../../../../src/plugins/dataset/check.ts"
import { synthesize } from "../../../../src/plugins/dataset/synth/generate.ts"
import { STYLES } from "../../../../src/plugins/dataset/synth/styles.ts"
import { MIN_DISTANCE_TO_HELD_OUT, styleByName, styleDistance, variedStyle } from "../../../../src/plugins/dataset/synth/varied.ts"
import { oracleSuccesses } from "../../../support/oracle-walk.ts"

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "virl-varied-"))
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }))

describe("city styles drawn from a style seed", () => {
  it("are the same for the same seed, differ between seeds, and stay far from the held-out nyc and sf looks", () => {
    expect(variedStyle(7)).toEqual(variedStyle(7))
    const styles = Array.from({ length: 40 }, (_, k) => variedStyle(1000 + k))
    expect(new Set(styles.map((s) => JSON.stringify(s.walls))).size).toBe(40)
    for (const s of styles) {
      expect(styleDistance(s, STYLES["nyc"])).toBeGreaterThanOrEqual(MIN_DISTANCE_TO_HELD_OUT)
      expect(styleDistance(s, STYLES["sf"])).toBeGreaterThanOrEqual(MIN_DISTANCE_TO_HELD_OUT)
      // the held-out cities' own furniture never appears
      expect(s.cableCars).toBe(false)
      expect(s.carColour).toBeDefined()
    }
    // grid orientations spread over the compass, so every direction word occurs in the mixture
    const bearings = styles.map((s) => s.gridBearing)
    expect(Math.min(...bearings)).toBeLessThan(15)
    expect(Math.max(...bearings)).toBeGreaterThan(75)
  })

  it("are named varied:N; other names are unknown", () => {
    expect(styleByName("varied:12")?.name).toBe("varied:12")
    expect(styleByName("nyc")).toBe(STYLES["nyc"])
    expect(styleByName("paris")).toBeUndefined()
    expect(styleByName("varied:x")).toBeUndefined()
  })

  it.effect("render a city the dataset check finds clean and the ground truth walks in both action spaces", () =>
    Effect.gen(function*() {
      const dir = path.join(scratch, "v")
      yield* synthesize({ city: "varied:3", seed: 2, splits: [{ dir, routes: 5 }], panorama: { width: 256, height: 128 } })
      const check = yield* checkDataset(dir, { deep: true })
      expect(check.problems.map(String)).toEqual([])
      expect(yield* oracleSuccesses(dir, "absolute", 5)).toBe(5)
      expect(yield* oracleSuccesses(dir, "relative", 5)).toBe(5)
    }))
})
