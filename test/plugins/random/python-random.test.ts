import { describe, expect, it } from "vitest"
import { PythonRandom } from "../../../src/plugins/random/python-random.ts"

describe("PythonRandom", () => {
  it("continues identically after snapshot and restore", () => {
    const a = new PythonRandom(7)
    for (let i = 0; i < 700; i++) a.random()
    const saved = a.snapshot()
    const expected = [a.random(), a.randint(0, 359), a.choiceIndex(48)]
    const b = new PythonRandom(99)
    b.restore(saved)
    expect([b.random(), b.randint(0, 359), b.choiceIndex(48)]).toEqual(expected)
  })

  it("seeds negative integers as their absolute value, as CPython does", () => {
    expect(new PythonRandom(-12).random()).toBe(new PythonRandom(12).random())
  })

  it("rejects a non-integer seed and an empty randint range", () => {
    expect(() => new PythonRandom(1.5)).toThrow(/integer/)
    expect(() => new PythonRandom(1).randint(3, 2)).toThrow(/empty range/)
  })

  it("refuses a state from another algorithm", () => {
    expect(() => new PythonRandom(1).restore({ algorithm: "xorshift", seed: "1", state: [] })).toThrow(/cannot restore/)
  })
})
