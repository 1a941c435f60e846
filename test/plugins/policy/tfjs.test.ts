import { Effect, Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { PolicyInput } from "../../../src/core/policy.ts"
import { PRESETS, resolveConfig } from "../../../src/app/config.ts"
import { policySettings } from "../../../src/app/services.ts"
import { verify } from "../../../src/domain/virl/verifier.ts"
import { oracleText } from "../../../src/plugins/policy/oracle.ts"
import * as Backend from "../../../src/plugins/policy/tfjs/backend.ts"
import * as TfPolicy from "../../../src/plugins/policy/tfjs/layer.ts"
import { PythonRandom } from "../../../src/plugins/random/python-random.ts"
import { oracleSteps } from "../../support/oracle-steps.ts"
import { removeCity, tinyCity } from "../../support/tiny-city.ts"

let dir = ""
let inputs: PolicyInput[] = []
beforeAll(async () => {
  dir = await tinyCity("nyc", 3)
  inputs = await oracleSteps(dir, 6)
})
afterAll(() => removeCity(dir))

const build = async (backend: "wasm" | "cpu") => {
  const { tf } = await Effect.runPromise(Backend.make(backend))
  return TfPolicy.make(tf, TfPolicy.policyConfigOf(policySettings(PRESETS.small)), new PythonRandom(5))
}

describe("the tfjs vision-language policy", () => {
  it("writes the reference's output JSON with an action the prompt lists", async () => {
    const policy = await build("wasm")
    const outputs = await Effect.runPromise(policy.act(inputs, { temperature: 1, greedy: false }))
    for (const [i, out] of outputs.entries()) {
      const parsed = JSON.parse(out.text)
      expect(Object.keys(parsed)).toEqual(["current observation", "current instruction", "action"])
      expect(parsed.action).toMatch(/^(forward\(\)|stop\(\)|turn_direction\((north|northeast|east|southeast|south|southwest|west|northwest)\))$/)
      expect(verify(out.text, String(inputs[i].info["gt_action"]), String(inputs[i].info["current_obs"]))._tag).toMatch(/Correct|Wrong/)
      expect(out.logProb).toBeLessThan(0)
    }
  })

  it("computes the same gradients on wasm as on the pure-JS cpu backend", async () => {
    const grads = async (backend: "wasm" | "cpu") => {
      const policy = await build(backend)
      const samples = inputs.map((i) => policy.learner!.teacher(i, oracleText(i.info))!)
      const { gradients, evaluation } = await Effect.runPromise(
        policy.learner!.gradients(samples, { thoughtWeight: 0.5, temperature: 1 }, (ev) => ({
          logProb: ev.logProbs.map((_, k) => (k % 2 === 0 ? -1 : 0.5)),
          value: ev.values.map(() => 0.3),
          entropy: ev.entropies.map(() => -0.01)
        }))
      )
      return { gradients, evaluation }
    }
    const wasm = await grads("wasm")
    const cpu = await grads("cpu")
    for (let k = 0; k < wasm.evaluation.logProbs.length; k++) expect(wasm.evaluation.logProbs[k]).toBeCloseTo(cpu.evaluation.logProbs[k], 4)
    let checked = 0
    for (const [name, g] of wasm.gradients) {
      const c = cpu.gradients.get(name)!
      const scale = c.reduce((m, x) => Math.max(m, Math.abs(x)), 1e-3)
      for (let i = 0; i < g.length; i++) expect(Math.abs(g[i] - c[i]) / scale).toBeLessThan(2e-3)
      if (c.some((x) => x !== 0)) checked++
    }
    expect(checked).toBeGreaterThan(15)
  })

  it("sums bags of words by tensor ops (the GPU path) to the same outputs and gradients as in JS", async () => {
    const { tf } = await Effect.runPromise(Backend.make("cpu"))
    // small and few, on the pure-JS cpu backend (wasm has no segment-sum kernel)
    const config = TfPolicy.policyConfigOf({ ...policySettings(PRESETS.small), policy_config: { embedding: 16, hidden: 32, patch: 8, patch_features: 8 } })
    const few = inputs.slice(0, 8)
    const run = async (bagsOn: "js" | "tensor") => {
      const policy = TfPolicy.make(tf, config, new PythonRandom(5), undefined, { bagsOn })
      const acted = await Effect.runPromise(policy.act(few, { temperature: 1, greedy: true }))
      const samples = few.map((i) => policy.learner!.teacher(i, oracleText(i.info))!)
      const coefficients = (ev: { logProbs: ReadonlyArray<number>; values: ReadonlyArray<number>; entropies: ReadonlyArray<number> }) => ({
        logProb: ev.logProbs.map((_, k) => (k % 2 === 0 ? -1 : 0.5)),
        value: ev.values.map(() => 0.3),
        entropy: ev.entropies.map(() => -0.01)
      })
      const { gradients } = await Effect.runPromise(policy.learner!.gradients(samples, { thoughtWeight: 0.5, temperature: 1 }, coefficients))
      // and after an update committed to the model, it acts the same again
      for (const [name, p] of policy.learner!.parameters()) p.forEach((x, i) => (p[i] = x - 0.01 * gradients.get(name)![i]!))
      policy.learner!.commit()
      const after = await Effect.runPromise(policy.act(few, { temperature: 1, greedy: true }))
      return { acted, after, gradients }
    }
    const js = await run("js")
    const tensor = await run("tensor")
    expect(tensor.acted.map((o) => o.text)).toEqual(js.acted.map((o) => o.text))
    tensor.acted.forEach((o, k) => expect(o.logProb).toBeCloseTo(js.acted[k]!.logProb, 4))
    tensor.after.forEach((o, k) => expect(o.logProb).toBeCloseTo(js.after[k]!.logProb, 3))
    expect([...tensor.gradients.keys()].sort()).toEqual([...js.gradients.keys()].sort())
    for (const [name, g] of js.gradients) {
      const t = tensor.gradients.get(name)!
      const scale = g.reduce((m, x) => Math.max(m, Math.abs(x)), 1e-3)
      for (let i = 0; i < g.length; i++) expect(Math.abs(g[i]! - t[i]!) / scale).toBeLessThan(1e-3)
    }
    expect(js.gradients.get("word_embedding")!.some((x) => x !== 0)).toBe(true)
  })

  it("holds no more tensor memory after training steps, commits and acting than before, and none once released", async () => {
    const { tf } = await Effect.runPromise(Backend.make("wasm"))
    const empty = tf.memory().numTensors
    const policy = TfPolicy.make(tf, TfPolicy.policyConfigOf(policySettings(PRESETS.small)), new PythonRandom(5))
    expect(tf.memory().numTensors).toBeGreaterThan(empty)
    const samples = inputs.map((i) => policy.learner!.teacher(i, oracleText(i.info))!)
    const step = async () => {
      await Effect.runPromise(
        policy.learner!.gradients(samples, { thoughtWeight: 1, temperature: 1 }, (ev) => ({
          logProb: ev.logProbs.map(() => -1),
          value: ev.values.map(() => 0),
          entropy: ev.entropies.map(() => 0)
        }))
      )
      policy.learner!.commit()
      await Effect.runPromise(policy.act(inputs, { temperature: 1, greedy: false }))
      await Effect.runPromise(policy.distributions!(inputs, { temperature: 1 }))
    }
    await step()
    const before = tf.memory().numBytes
    for (let k = 0; k < 5; k++) await step()
    expect(tf.memory().numBytes).toBe(before)
    policy.release!()
    expect(tf.memory().numTensors).toBe(empty)
  })

  it("turns the expert's answer into a sample and refuses one it cannot write", async () => {
    const policy = await build("wasm")
    expect(policy.learner!.teacher(inputs[0], oracleText(inputs[0].info))).toBeDefined()
    expect(policy.learner!.teacher(inputs[0], '{"action": "fly()"}')).toBeUndefined()
    expect(policy.learner!.teacher(inputs[0], "not json at all")).toBeUndefined()
  })

  it("names what WebGPU lacks here, and falls back only when the backend list allows it", async () => {
    const alone = await Effect.runPromise(Effect.either(Backend.make("webgpu")))
    if (Either.isLeft(alone)) {
      // no webgpu package here, or no adapter (this test process is not pointed at a Vulkan driver): the error says which and how to get it
      expect(alone.left.message).toMatch(/webgpu: (the npm packages webgpu and @tensorflow\/tfjs-backend-webgpu are not installed|Dawn found no GPU adapter)/)
      const fallback = await Effect.runPromise(Backend.make("webgpu,wasm"))
      expect(fallback.name).toBe("wasm")
    } else {
      // a machine whose Vulkan driver Dawn finds by itself: WebGPU starts and says on what
      expect(alone.right.name).toBe("webgpu")
      expect(Backend.webgpuAdapter()).toBeDefined()
      await Effect.runPromise(Backend.make("wasm"))
    }
    const bad = resolveConfig(PRESETS.small, [{ source: "command line", values: { backend: "gpu" } }])
    expect(String(Either.isLeft(bad) ? bad.left : "")).toMatch(/auto, wasm, cpu, native or webgpu/)
  })
})
