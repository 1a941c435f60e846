import { describe, expect, it } from "vitest"
import { softwareWebgpu, webgpuCheck } from "../../support/software-webgpu.ts"

const webgpu = softwareWebgpu()
if ("missing" in webgpu) console.warn(`skipped: the WebGPU checks need ${webgpu.missing}`)

interface Comparison {
  readonly backend: string
  readonly adapter: Record<string, string>
  readonly onDevice: boolean
  readonly samples: number
  readonly answers: number
  readonly gradient: number
  readonly before: { readonly sameText: number; readonly logProb: number }
  readonly after: { readonly sameText: number; readonly logProb: number }
  readonly moved: number
  readonly replay: number
  readonly weights: { readonly worst: number; readonly steps: ReadonlyArray<number>; readonly moments: number }
}

// the GPU code paths (the tfjs-vl policy's own WGSL kernels and AdamW on the device; the
// generator's recorded kernels — training passes, one batch past a single pass, KV-cached
// decoding with the copy head) on a software Vulkan driver
describe.skipIf("missing" in webgpu)("WebGPU (Dawn over Mesa's lavapipe, on the CPU)", () => {
  it("computes what wasm computes, for both policies: gradients, answers, and answers after an AdamW step", async () => {
    const { status, report, stderr } = await webgpuCheck("env" in webgpu ? webgpu.env : {})
    expect(status, stderr.slice(-2000)).toBe(0)
    for (const policy of ["tfjs-vl", "generative"]) {
      const r = (report as Record<string, Comparison>)[policy]!
      expect(r.backend).toBe("webgpu")
      expect(r.adapter["architecture"] ?? r.adapter["description"]).toBeDefined()
      expect(r.samples).toBeGreaterThan(8)
      expect(r.gradient).toBeLessThan(1e-4)
      for (const when of [r.before, r.after]) {
        expect(when.sameText).toBe(r.answers)
        expect(when.logProb).toBeLessThan(1e-3)
      }
      // the step moved the answers far more than the backends differ
      expect(r.moved).toBeGreaterThan(10 * r.after.logProb)
      // what a checkpoint reads after it (settle() brings a GPU's AdamW back): the same weights
      // to a tenth of the step's size (lr 3e-4), one step, every parameter's moments
      expect(r.weights.worst).toBeLessThan(3e-5)
      expect(r.weights.steps).toEqual([1, 1])
      expect(r.weights.moments).toBeGreaterThan(10)
      // act() and the learner's replay give a sampled answer the same log-probability (PPO's ratio starts at 1)
      expect(r.replay).toBeLessThan(1e-3)
    }
    // both policies' AdamW runs on the GPU there (the answers after the step are compared above)
    expect((report as Record<string, Comparison>)["tfjs-vl"]!.onDevice).toBe(true)
    expect((report as Record<string, Comparison>)["generative"]!.onDevice).toBe(true)
    // the generator's sampled answers: the same draws on both backends
    expect((report as Record<string, Comparison & { sampled: Comparison["before"] }>)["generative"]!.sampled.sameText).toBe(16)
  }, 600_000)
})
