import { describe, expect, it } from "vitest"
import { meanKl, partKl } from "../../src/core/kl.ts"

const dist = (parts: Record<string, number[]>) => ({ parts: Object.fromEntries(Object.entries(parts).map(([k, ps]) => [k, ps.map(Math.log)])) })

describe("forward KL of output distributions", () => {
  it("is zero for the same distribution and sums over independent parts", () => {
    const p = dist({ action: [0.5, 0.5], observation: [0.25, 0.25, 0.5] })
    expect(partKl(p, p)).toEqual({ action: 0, observation: 0 })
    const q = dist({ action: [0.9, 0.1], observation: [0.25, 0.25, 0.5] })
    const expected = 0.5 * Math.log(0.5 / 0.9) + 0.5 * Math.log(0.5 / 0.1)
    expect(partKl(p, q).action).toBeCloseTo(expected, 12)
    const m = meanKl([p, p], [q, p])
    expect(m.total).toBeCloseTo(expected / 2, 12)
    expect(m.parts["observation"]).toBe(0)
    expect(m.inputs).toBe(2)
  })

  it("grows without bound where the fine-tuned policy drops what the reference still says", () => {
    const base = dist({ observation: [0.5, 0.5] })
    expect(partKl(base, dist({ observation: [0.999999, 0.000001] })).observation).toBeGreaterThan(6)
    expect(partKl(dist({ observation: [1, 0] }), dist({ observation: [0.5, 0.5] })).observation).toBeCloseTo(Math.log(2), 12)
  })

  it("refuses distributions over different options", () => {
    expect(() => partKl(dist({ action: [0.5, 0.5] }), dist({ action: [1 / 3, 1 / 3, 1 / 3] }))).toThrow(/different options/)
  })
})
