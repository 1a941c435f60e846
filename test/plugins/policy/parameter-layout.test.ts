import { describe, expect, it } from "vitest"
import { parameterLayout } from "../../../src/plugins/policy/parameter-layout.ts"

describe("a network's parameters as one flat array", () => {
  const layout = parameterLayout([{ name: "w", shape: [2, 3] }, { name: "b", shape: [3] }])

  it("lays them out in spec order, and flattens and splits back", () => {
    expect([layout.total, layout.offset, layout.size]).toEqual([9, { w: 0, b: 6 }, { w: 6, b: 3 }])
    const flat = layout.flatten(new Map([["b", Float32Array.of(7, 8, 9)]]))
    // a missing parameter is zero
    expect(Array.from(flat)).toEqual([0, 0, 0, 0, 0, 0, 7, 8, 9])
    const views = layout.split(flat)
    views.get("b")![0] = 70
    expect(flat[6]).toBe(70)
    const copies = layout.split(flat, { copy: true })
    copies.get("b")![0] = 700
    expect(flat[6]).toBe(70)
  })

  it("refuses a parameter it does not have, or one of the wrong size", () => {
    expect(() => layout.flatten(new Map([["c", new Float32Array(1)]]))).toThrow(/no parameter c/)
    expect(() => layout.flatten(new Map([["b", new Float32Array(4)]]))).toThrow(/b holds 4 values where the network has 3/)
  })
})
