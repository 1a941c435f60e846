import { describe, expect, it } from "vitest"
import { make } from "../../../src/plugins/optimizer/adamw.ts"

const config = { init_lr: 0.1, end_lr: 0.01, lr_max_steps: 10, eps: 1e-8, beta1: 0.9, beta2: 0.999, weight_decay: 0, max_grad_norm: 0, grad_accum_steps: 2 }

describe("AdamW", () => {
  it("averages accumulated micro-batches and steps once they are full", () => {
    const opt = make(config)
    const p = new Map([["w", new Float32Array([1, -1])]])
    expect(opt.accumulate(p, new Map([["w", new Float32Array([2, 0])]]))).toBeUndefined()
    const step = opt.accumulate(p, new Map([["w", new Float32Array([0, 4])]]))
    expect(step?.step).toBe(1)
    expect(step?.gradNorm).toBeCloseTo(Math.sqrt(1 + 4), 6)
    // first Adam step moves each weight by lr · sign(g)
    expect(p.get("w")![0]).toBeCloseTo(1 - 0.1, 5)
    expect(p.get("w")![1]).toBeCloseTo(-1 - 0.1, 5)
  })

  it("clips by global norm and follows the linear schedule", () => {
    const opt = make({ ...config, grad_accum_steps: 1, max_grad_norm: 1 })
    const p = new Map([["w", new Float32Array([0])]])
    const step = opt.accumulate(p, new Map([["w", new Float32Array([30])]]))!
    expect(step.gradNorm).toBeCloseTo(30, 4)
    expect(opt.learningRate(0)).toBeCloseTo(0.1, 12)
    expect(opt.learningRate(5)).toBeCloseTo(0.055, 12)
    expect(opt.learningRate(50)).toBeCloseTo(0.01, 12)
  })

  it("restores its moments and step from a state", () => {
    const a = make({ ...config, grad_accum_steps: 1 })
    const pa = new Map([["w", new Float32Array([0.5])]])
    a.accumulate(pa, new Map([["w", new Float32Array([1])]]))
    const b = make({ ...config, grad_accum_steps: 1 })
    b.restore(a.state())
    const pb = new Map([["w", Float32Array.from(pa.get("w")!)]])
    a.accumulate(pa, new Map([["w", new Float32Array([-2])]]))
    b.accumulate(pb, new Map([["w", new Float32Array([-2])]]))
    expect(pb.get("w")![0]).toBe(pa.get("w")![0])
  })
})
