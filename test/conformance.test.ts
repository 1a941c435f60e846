import { Effect } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import type { CaseResult } from "../src/conformance/cases.ts"
import { CASE_FILES, kindOf, runConformance } from "../src/conformance/run.ts"
import { FIXTURES } from "./support/fixtures.ts"

describe("reference conformance (test/fixtures/virl-reference)", () => {
  let results: CaseResult[] = []
  beforeAll(async () => {
    results = await Effect.runPromise(runConformance(FIXTURES))
  })

  it.each(CASE_FILES)("replays every case of the kind %s", (file) => {
    const mine = results.filter((r) => kindOf(r.file) === file)
    expect(mine.length).toBeGreaterThan(0)
    expect(mine.filter((r) => !r.ok).map((r) => `[${r.index}] ${r.label}: ${r.detail}`)).toEqual([])
  })
})
