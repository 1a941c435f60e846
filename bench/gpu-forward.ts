/**
 * The policy's forward pass on WebGPU two ways — tfjs op by op, and the fused kernels of
 * src/plugins/policy/tfjs/gpu-model.ts — on the same weights and inputs: the largest difference
 * of each output (listed entries only; exits non-zero past TOLERANCE), then each one's time per
 * batch at BATCHES, as a ratio. Needs a GPU machine (scripts/gpu/run.sh).
 *
 *   scripts/gpu/run.sh node --import tsx bench/gpu-forward.ts
 */
import { Effect } from "effect"
import { PRESETS } from "../src/app/config.ts"
import { policySettings } from "../src/app/services.ts"
import * as AdamW from "../src/plugins/optimizer/adamw.ts"
import * as Backend from "../src/plugins/policy/tfjs/backend.ts"
import { type Features, readFeatures, slotCount } from "../src/plugins/policy/tfjs/features.ts"
import type { Evaluation } from "../src/core/policy.ts"
import { oracleText } from "../src/plugins/policy/oracle.ts"
import { makeGpuModel } from "../src/plugins/policy/tfjs/gpu-model.ts"
import * as TfPolicy from "../src/plugins/policy/tfjs/layer.ts"
import { bagsOfWords, batchInputs, forward, initialParameters, parameterSpecs, WORD_TABLE } from "../src/plugins/policy/tfjs/model.ts"
import { PythonRandom } from "../src/plugins/random/python-random.ts"
import { oracleInputs } from "./inputs.ts"
import { msPerCall } from "./timing.ts"

const BATCHES = (process.env["BATCHES"] ?? "1,32,128,512").split(",").map(Number)
const SECONDS = Number(process.env["SECONDS"] ?? 2)
const TOLERANCE = Number(process.env["TOLERANCE"] ?? 1e-3)

type Tensor = import("@tensorflow/tfjs-core").Tensor

/** The largest difference of b from a, relative to a's largest magnitude. */
const relativeDifference = (a: Float32Array, b: Float32Array): { relative: number; scale: number } => {
  let scale = 1e-12
  let diff = 0
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(a[i]!))
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!))
  }
  return { relative: diff / scale, scale }
}

/** Milliseconds per call of `f`, over SECONDS after a warm-up. */
const time = (f: () => Promise<unknown>): Promise<number> => msPerCall(f, SECONDS, 3)

const main = async () => {
  const inputs = await oracleInputs(8)
  const { tf, name } = await Effect.runPromise(Backend.make("webgpu"))
  const config = TfPolicy.policyConfigOf(policySettings(PRESETS.small)).model
  const values = initialParameters(parameterSpecs(config), new PythonRandom(3))
  const params: Record<string, Tensor> = {}
  for (const spec of parameterSpecs(config)) if (spec.name !== WORD_TABLE) params[spec.name] = tf.tensor(values.get(spec.name)!, [...spec.shape])
  const device = (tf.backend() as unknown as { device: GPUDevice }).device
  const gpu = makeGpuModel(device, config)
  gpu.upload(values)
  const slots = slotCount(config.shape)
  const viaTfjs = async (features: ReturnType<typeof readFeatures>[]) => {
    const outs = tf.tidy(() => {
      const bags = tf.tensor(bagsOfWords(features, values.get(WORD_TABLE)!, config.embedding, slots), [features.length, slots, config.embedding])
      const out = forward(tf, config, params, batchInputs(tf, config, features, bags))
      return [out.actionLogits, out.sentenceLogits, out.observationLogits, out.value]
    })
    const read = (await Promise.all(outs.map((t) => t.data()))) as Float32Array[]
    tf.dispose(outs)
    return { actions: read[0]!, sentences: read[1]!, observations: read[2]!, values: read[3]! }
  }
  console.log(`gpu-forward — backend ${name}, ${inputs.length} distinct inputs`)
  let worst = 0
  for (const B of BATCHES) {
    const features = Array.from({ length: B }, (_, k) => readFeatures(inputs[(k * 7) % inputs.length]!, config.shape))
    const a = await viaTfjs(features)
    const b = await gpu.run(features)
    const diff = (key: keyof typeof a, width: number, listed: (f: (typeof features)[number]) => number) => {
      let max = 0
      features.forEach((f, i) => {
        for (let k = 0; k < Math.min(width, listed(f)); k++) max = Math.max(max, Math.abs(a[key][i * width + k]! - b[key][i * width + k]!))
      })
      return max
    }
    const d = {
      actions: diff("actions", config.shape.maxActions, (f) => f.actions.length),
      sentences: diff("sentences", config.shape.maxSentences, (f) => f.sentences.length),
      observations: diff("observations", config.shape.maxObservations, (f) => f.observations.length),
      values: diff("values", 1, () => 1)
    }
    worst = Math.max(worst, ...Object.values(d))
    const tTfjs = await time(() => viaTfjs(features))
    const tGpu = await time(() => gpu.run(features))
    console.log(
      `  B=${String(B).padStart(4)}: max |Δ| actions ${d.actions.toExponential(1)}, sentences ${d.sentences.toExponential(1)}, observations ${
        d.observations.toExponential(1)
      }, values ${d.values.toExponential(1)}; ` +
        `tfjs ${tTfjs.toFixed(2)} ms, fused ${tGpu.toFixed(2)} ms (${(tTfjs / tGpu).toFixed(1)}×; ${((1000 * B) / tGpu).toFixed(0)} samples/s)`
    )
  }
  // gradients: the tfjs learner's (taped) against the fused kernels', same weights, samples and loss
  // the tfjs path (op by op), as VIRL_WEBGPU_FORWARD=tfjs selects it
  process.env["VIRL_WEBGPU_FORWARD"] = "tfjs"
  const policy = TfPolicy.make(tf, { model: config, thought_prob_coef: 0.5 }, new PythonRandom(5), values)
  delete process.env["VIRL_WEBGPU_FORWARD"]
  const learner = policy.learner!
  const samples = inputs.map((i) => learner.teacher(i, oracleText(i.info))!).filter((x) => x !== undefined)
  let worstGrad = 0
  for (const B of BATCHES.filter((b) => b > 1)) {
    const batch = Array.from({ length: B }, (_, k) => samples[(k * 5) % samples.length]!) as unknown as Array<
      { features: Features; action: number; instruction: number; observation: number }
    >
    const options = { thoughtWeight: 0.5, temperature: 0.9 }
    // as PPO's: every coefficient depends on the evaluation
    const coefficients = (ev: Evaluation) => ({
      logProb: ev.logProbs.map((lp, i) => -(1 + 0.1 * (i % 3)) * Math.exp(Math.min(lp, 0)) / B),
      value: ev.values.map((v, i) => (v - 0.1 * (i % 4)) / B),
      entropy: ev.entropies.map(() => -0.01 / B)
    })
    const a = await Effect.runPromise(learner.gradients(batch as never, options, coefficients))
    const b = await gpu.gradients(batch.map((s) => s.features), batch, options, coefficients)
    const evalDiff = Math.max(
      ...a.evaluation.logProbs.map((x, i) => Math.abs(x - b.evaluation.logProbs[i]!)),
      ...a.evaluation.values.map((x, i) => Math.abs(x - b.evaluation.values[i]!)),
      ...a.evaluation.entropies.map((x, i) => Math.abs(x - b.evaluation.entropies[i]!))
    )
    const rows: string[] = []
    for (const [name, ga] of a.gradients) {
      const { relative, scale } = relativeDifference(ga, b.gradients.get(name)!)
      worstGrad = Math.max(worstGrad, relative)
      if (relative > 1e-3) rows.push(`${name} ${relative.toExponential(1)} (max |g| ${scale.toExponential(1)})`)
    }
    const tTfjs = await time(() => Effect.runPromise(learner.gradients(batch as never, options, coefficients)))
    const tGpu = await time(() => gpu.gradients(batch.map((s) => s.features), batch, options, coefficients))
    console.log(
      `  gradients B=${String(B).padStart(4)}: evaluation max |Δ| ${evalDiff.toExponential(1)}, worst relative gradient difference ${
        worstGrad.toExponential(1)
      }${rows.length > 0 ? ` — ${rows.join("; ")}` : ""}; ` +
        `tfjs ${tTfjs.toFixed(2)} ms, fused ${tGpu.toFixed(2)} ms (${(tTfjs / tGpu).toFixed(1)}×; ${((1000 * B) / tGpu).toFixed(0)} samples/s)`
    )
    worst = Math.max(worst, evalDiff)
  }
  worst = Math.max(worst, worstGrad)
  // AdamW on the GPU against AdamW in JS on the same fused gradients: 6 steps, then weights and moments
  {
    const B = 32
    const batch = Array.from({ length: B }, (_, k) => samples[(k * 3) % samples.length]!)
    const make = () => TfPolicy.make(tf, { model: config, thought_prob_coef: 0.5 }, new PythonRandom(5), new Map([...values].map(([k, x]) => [k, x.slice()])))
    const js = make().learner!
    const dev = make().learner!
    const settings = { ...PRESETS.small.optimizer_config, max_grad_norm: 0.5, grad_accum_steps: 1, weight_decay: 0.01 }
    const jsOptimizer = AdamW.make(settings)
    const devOptimizer = dev.onDevice!("adamw", AdamW.make(settings))!
    const coefficients = (ev: Evaluation) => ({
      logProb: ev.logProbs.map(() => -1 / B),
      value: ev.values.map((v) => v / B),
      entropy: ev.entropies.map(() => -0.01 / B)
    })
    const steps: string[] = []
    const stepTimes = [0, 0]
    for (let i = 0; i < 6; i++) {
      let t = performance.now()
      const a = await Effect.runPromise(js.gradients(batch, { thoughtWeight: 1, temperature: 1 }, coefficients))
      const sa = jsOptimizer.accumulate(js.parameters(), a.gradients)!
      js.commit()
      stepTimes[0] += performance.now() - t
      t = performance.now()
      await Effect.runPromise(dev.gradients(batch, { thoughtWeight: 1, temperature: 1 }, coefficients))
      const sb = devOptimizer.accumulate(dev.parameters(), new Map())!
      dev.commit()
      stepTimes[1] += performance.now() - t
      steps.push(`norm ${sa.gradNorm.toFixed(5)}/${sb.gradNorm.toFixed(5)} lr ${sa.learningRate.toExponential(3)}/${sb.learningRate.toExponential(3)}`)
    }
    await Effect.runPromise(dev.settle!())
    const stA = jsOptimizer.state()
    const stB = devOptimizer.state()
    let worstP = 0
    let worstM = 0
    for (const [name, pa] of js.parameters()) {
      const pb = dev.parameters().get(name)!
      let scale = 1e-12
      let d = 0
      for (let i = 0; i < pa.length; i++) {
        scale = Math.max(scale, Math.abs(pa[i]! - values.get(name)![i]!))
        d = Math.max(d, Math.abs(pa[i]! - pb[i]!))
      }
      // relative to how far the weights moved
      worstP = Math.max(worstP, d / scale)
      worstM = Math.max(worstM, relativeDifference(stA.moments.get(name)!.m, stB.moments.get(name)!.m).relative)
    }
    console.log(
      `  AdamW on the GPU vs in JS, 6 steps at B=32: ${steps.join("; ")}; weights' difference ${worstP.toExponential(1)} of their change, first moments ${
        worstM.toExponential(1)
      }; step ${(stepTimes[0] / 6).toFixed(1)} ms (JS AdamW) vs ${(stepTimes[1] / 6).toFixed(1)} ms (GPU AdamW)`
    )
    worst = Math.max(worst, worstP / 10, worstM / 10)
  }
  if (!(worst <= TOLERANCE)) {
    console.log(`FAIL: largest difference ${worst} > ${TOLERANCE}`)
    process.exitCode = 1
  } else console.log(`ok: largest difference ${worst.toExponential(1)} ≤ ${TOLERANCE}`)
}

main().catch((e) => {
  console.error(e)
  process.exitCode = 1
})
