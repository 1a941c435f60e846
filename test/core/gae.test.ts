import { describe, expect, it } from "vitest"
import { gae, normalise } from "../../src/core/gae.ts"

describe("gae", () => {
  it("matches a hand computation across an episode boundary", () => {
    // γ = 0.5, λ = 0.5; the episode ends at step 1 (mask 0), a new one runs at step 2
    const { advantages, returns } = gae([1, 2, 3], [0.5, 1, 2], [1, 0, 1], 4, 0.5, 0.5)
    const d2 = 3 + 0.5 * 4 - 2 // 3
    const d1 = 2 + 0 - 1 // 1, nothing flows back from step 2
    const d0 = 1 + 0.5 * 1 - 0.5 // 1
    expect(advantages).toEqual([d0 + 0.25 * d1, d1, d2])
    expect(returns).toEqual([d0 + 0.25 * d1 + 0.5, d1 + 1, d2 + 2])
  })

  it("normalises to mean 0 and standard deviation 1", () => {
    const xs = normalise([1, 2, 3, 4])
    expect(xs.reduce((s, x) => s + x, 0)).toBeCloseTo(0, 12)
    expect(Math.sqrt(xs.reduce((s, x) => s + x * x, 0) / 3)).toBeCloseTo(1, 4)
  })
})
