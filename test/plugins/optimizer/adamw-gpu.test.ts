import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import type { OptimizerState, OptimizerStep } from "../../../src/core/optimizer.ts"
import { type AdamWDevice, adamwOnDevice } from "../../../src/plugins/optimizer/adamw-gpu.ts"
import { make, NAME } from "../../../src/plugins/optimizer/adamw.ts"

const config = { init_lr: 0.1, end_lr: 0.01, lr_max_steps: 10, eps: 1e-8, beta1: 0.9, beta2: 0.999, weight_decay: 0, max_grad_norm: 0, grad_accum_steps: 1 }

/** A stand-in for a learner's GPU: a step per gradients() call, its parameters and moments as a GPU would hold them. */
const fakeDevice = () => {
  const log: string[] = []
  let last: OptimizerStep | undefined
  let restored: { step: number; moments: OptimizerState["moments"] } | undefined
  const device: AdamWDevice = {
    use: (adamw) => log.push(adamw === undefined ? "use none" : `use lr ${adamw.learningRate(0)}`),
    lastStep: () => {
      const step = last
      last = undefined
      return step
    },
    restore: (step, moments) => {
      if (moments.get("w")?.m.length !== 2) throw new Error("w holds 3 values where the network has 2")
      restored = { step, moments }
    },
    read: async () => ({
      parameters: new Map([["w", new Float32Array([0.5, 0.25])]]),
      m: new Map([["w", new Float32Array([1, 2])]]),
      v: new Map([["w", new Float32Array([3, 4])]])
    })
  }
  return { device, log, took: (step: OptimizerStep) => (last = step), restored: () => restored }
}

describe("AdamW on a learner's GPU (adamwOnDevice)", () => {
  it("reports the steps taken on the device, and hands out its state only after settle() read it back", async () => {
    const gpu = fakeDevice()
    const parameters = new Map([["w", new Float32Array([1, 1])]])
    const placed = adamwOnDevice(gpu.device, parameters)
    const optimizer = placed.onDevice(NAME, make(config))!
    expect(gpu.log).toEqual(["use lr 0.1"])
    expect(() => optimizer.accumulate(parameters, new Map())).toThrow(/without a gradients\(\) call/)
    gpu.took({ learningRate: 0.1, gradNorm: 2, step: 1 })
    expect(optimizer.accumulate(parameters, new Map())).toEqual({ learningRate: 0.1, gradNorm: 2, step: 1 })
    // the device is ahead of `parameters`: commit() must not push them, state() must not be read
    expect(placed.ahead()).toBe(true)
    expect(() => optimizer.state()).toThrow(/before settle/)
    expect(() => placed.onDevice("sgd", make(config))).toThrow(/before settle/)
    await Effect.runPromise(placed.settle())
    expect(placed.ahead()).toBe(false)
    expect([...parameters.get("w")!]).toEqual([0.5, 0.25])
    const state = optimizer.state()
    expect(state.step).toBe(1)
    expect([...state.moments.get("w")!.m]).toEqual([1, 2])
    expect([...state.moments.get("w")!.v]).toEqual([3, 4])
  })

  it("puts a checkpoint's state on the device, naming what does not fit", () => {
    const gpu = fakeDevice()
    const optimizer = adamwOnDevice(gpu.device, new Map([["w", new Float32Array(2)]])).onDevice(NAME, make(config))!
    const fits = { step: 7, pending: 0, moments: new Map([["w", { m: new Float32Array(2), v: new Float32Array(2) }]]) }
    optimizer.restore(fits)
    expect(gpu.restored()?.step).toBe(7)
    expect(optimizer.state().step).toBe(7)
    const wrong = { step: 7, pending: 0, moments: new Map([["w", { m: new Float32Array(3), v: new Float32Array(3) }]]) }
    expect(() => optimizer.restore(wrong)).toThrow(/optimizer state: w holds 3 values/)
  })

  it("leaves the gradients to the JS optimizer for another optimizer, accumulation over micro-batches, or no device", () => {
    const gpu = fakeDevice()
    const placed = adamwOnDevice(gpu.device, new Map())
    expect(placed.onDevice("sgd", make(config))).toBeUndefined()
    expect(placed.onDevice(NAME, make({ ...config, grad_accum_steps: 2 }))).toBeUndefined()
    expect(gpu.log).toEqual(["use none", "use none"])
    expect(adamwOnDevice(undefined, new Map()).onDevice(NAME, make(config))).toBeUndefined()
  })
})
