/**
 * Run by test/plugins/policy/webgpu.test.ts in a child process that can find a WebGPU adapter:
 * both policies on wasm and on WebGPU from the same initial weights and inputs — gradients of one
 * loss, greedy answers before and after one AdamW step (on the GPU where the learner places it),
 * then the weights and optimizer state a checkpoint would read, and sampled answers — and
 * prints one JSON line comparing them.
 */
import { Effect } from "effect"
import { oracleInputs } from "../../bench/inputs.ts"
import { PRESETS } from "../../src/app/config.ts"
import { policySettings } from "../../src/app/services.ts"
import type { PolicyService } from "../../src/core/policy.ts"
import * as AdamW from "../../src/plugins/optimizer/adamw.ts"
import { DEFAULT_ARCHITECTURE } from "../../src/plugins/policy/generative/config.ts"
import { make as makeGenerative } from "../../src/plugins/policy/generative/policy.ts"
import { defaultVocabulary } from "../../src/plugins/policy/generative/tokenizer.ts"
import { oracleText } from "../../src/plugins/policy/oracle.ts"
import * as Backend from "../../src/plugins/policy/tfjs/backend.ts"
import * as TfPolicy from "../../src/plugins/policy/tfjs/layer.ts"
import type { Tf } from "../../src/plugins/policy/tfjs/backend.ts"
import { PythonRandom } from "../../src/plugins/random/python-random.ts"

const inputs = (await oracleInputs(2)).slice(0, 16)
const policies: Record<string, (tf: Tf) => PolicyService> = {
  "tfjs-vl": (tf) => TfPolicy.make(tf, TfPolicy.policyConfigOf(policySettings(PRESETS.small)), new PythonRandom(1)),
  generative: (tf) =>
    makeGenerative(tf, {
      architecture: { ...DEFAULT_ARCHITECTURE, width: 32, heads: 2, decoder_layers: 1, prompt_tokens: 128, image_side: 16 },
      vocabulary: defaultVocabulary(),
      thought_prob_coef: 0.5
    }, new PythonRandom(1))
}

const runOn = async (backend: string, build: (tf: Tf) => PolicyService) => {
  const { tf, name } = await Effect.runPromise(Backend.make(backend))
  const policy = build(tf)
  const learner = policy.learner!
  const samples = inputs.flatMap((i) => learner.teacher(i, oracleText(i.info)) ?? [])
  const loss = (c: number) => (ev: { logProbs: ReadonlyArray<number>; values: ReadonlyArray<number>; entropies: ReadonlyArray<number> }) => ({
    logProb: ev.logProbs.map(() => -1 / samples.length),
    value: ev.values.map(() => c),
    entropy: ev.entropies.map(() => c / 10)
  })
  const { gradients } = await Effect.runPromise(learner.gradients(samples, { thoughtWeight: 0.5, temperature: 1 }, loss(0.1)))
  // a batch past one GPU pass (the generator's own kernels take 128 answers a pass), at another temperature
  const many = Array.from({ length: 136 }, (_, k) => samples[k % samples.length]!)
  const large = await Effect.runPromise(learner.gradients(many, { thoughtWeight: 0.5, temperature: 0.7 }, loss(0.1)))
  const before = await Effect.runPromise(policy.act(inputs, { temperature: 1, greedy: true }))
  const js = AdamW.make({ ...PRESETS.small.optimizer_config, max_grad_norm: 1, grad_accum_steps: 1 })
  const optimizer = learner.onDevice?.(AdamW.NAME, js) ?? js
  const step = await Effect.runPromise(learner.gradients(samples, { thoughtWeight: 0.5, temperature: 1 }, loss(0)))
  optimizer.accumulate(learner.parameters(), step.gradients)
  learner.commit()
  const after = await Effect.runPromise(policy.act(inputs, { temperature: 1, greedy: true }))
  // the parameters and the optimizer's state as a checkpoint reads them (from the GPU where AdamW ran there)
  await Effect.runPromise(learner.settle?.() ?? Effect.void)
  const settled = { parameters: new Map([...learner.parameters()].map(([k, v]) => [k, v.slice()])), state: optimizer.state() }
  // drawn with the run's generator, seeded alike on both backends
  const sampled = await Effect.runPromise(policy.act(inputs, { temperature: 1, greedy: false }))
  // PPO's ratio starts at 1: the learner scores each sampled answer as act() did (the last call: it may take a step)
  const written = sampled.filter((o) => o.sample !== undefined)
  let replayed: ReadonlyArray<number> = []
  await Effect.runPromise(learner.gradients(written.map((o) => o.sample!), { thoughtWeight: 0.5, temperature: 1 }, (ev) => {
    replayed = ev.logProbs
    return loss(0)(ev)
  }))
  const replay = Math.max(...written.map((o, k) => Math.abs(o.logProb - replayed[k]!)))
  return {
    name,
    samples: samples.length,
    gradients,
    large: large.gradients,
    before,
    after,
    sampled,
    settled,
    replay,
    onDevice: optimizer !== js,
    adapter: Backend.webgpuAdapter()
  }
}

const report: Record<string, unknown> = {}
for (const [policy, build] of Object.entries(policies)) {
  const cpu = await runOn("wasm", build)
  const gpu = await runOn("webgpu", build)
  /** The largest relative difference (root of the summed squares) of any parameter's gradient. */
  const difference = (a: ReadonlyMap<string, Float32Array>, b: ReadonlyMap<string, Float32Array>) => {
    let worst = 0
    for (const [k, g] of a) {
      const h = b.get(k)!
      let num = 0
      let den = 0
      for (let i = 0; i < g.length; i++) {
        num += (g[i]! - h[i]!) ** 2
        den += g[i]! ** 2
      }
      if (den > 0) worst = Math.max(worst, Math.sqrt(num / den))
    }
    return worst
  }
  const gradient = Math.max(difference(cpu.gradients, gpu.gradients), difference(cpu.large, gpu.large))
  /** After the step: the largest difference of any weight, the optimizers' step counts and the GPU's moments. */
  const weights = (() => {
    let worst = 0
    for (const [k, w] of cpu.settled.parameters) {
      const u = gpu.settled.parameters.get(k)!
      for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(w[i]! - u[i]!))
    }
    return { worst, steps: [cpu.settled.state.step, gpu.settled.state.step], moments: gpu.settled.state.moments.size }
  })()
  const compare = (a: typeof cpu.before, b: typeof cpu.before) => ({
    sameText: a.filter((o, k) => o.text === b[k]!.text).length,
    logProb: Math.max(...a.map((o, k) => Math.abs(o.logProb - b[k]!.logProb)))
  })
  report[policy] = {
    backend: gpu.name,
    adapter: gpu.adapter,
    onDevice: gpu.onDevice,
    samples: cpu.samples,
    answers: inputs.length,
    gradient,
    before: compare(cpu.before, gpu.before),
    after: compare(cpu.after, gpu.after),
    // how far the step moved the answers' log-probabilities on the GPU (the update took place)
    moved: compare(gpu.before, gpu.after).logProb,
    sampled: compare(cpu.sampled, gpu.sampled),
    // the largest difference between act()'s log-probability of a sampled answer and the learner's replay of it
    replay: Math.max(cpu.replay, gpu.replay),
    weights
  }
}
console.log(JSON.stringify(report))
