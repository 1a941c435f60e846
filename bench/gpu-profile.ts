/**
 * Where one training step of the tfjs policy, op by op through tfjs, goes on a backend (default webgpu), at batch sizes
 * BATCHES: the learner's parts timed one by one (first forward + read-back, taped forward +
 * backward, gradient read-back, word-table gradient in JS, optimizer, commit), and how many
 * kernels the taped pass runs.
 *
 *   scripts/gpu/run.sh npx tsx bench/gpu-profile.ts
 */
import { Effect } from "effect"
import { PRESETS } from "../src/app/config.ts"
import { policySettings } from "../src/app/services.ts"
import * as AdamW from "../src/plugins/optimizer/adamw.ts"
import { oracleText } from "../src/plugins/policy/oracle.ts"
import * as Backend from "../src/plugins/policy/tfjs/backend.ts"
import { type Features, slotCount } from "../src/plugins/policy/tfjs/features.ts"
import * as TfPolicy from "../src/plugins/policy/tfjs/layer.ts"
import { bagsOfWords, batchInputs, forward, tableGradient, WORD_TABLE } from "../src/plugins/policy/tfjs/model.ts"
import { PythonRandom } from "../src/plugins/random/python-random.ts"
import { oracleInputs } from "./inputs.ts"

const BACKEND = process.env["BACKEND"] ?? "webgpu"
const BATCHES = (process.env["BATCHES"] ?? "32,128").split(",").map(Number)
const REPS = Number(process.env["REPS"] ?? 10)

type Tensor = import("@tensorflow/tfjs-core").Tensor

const main = async () => {
  const inputs = await oracleInputs(8)
  const { tf, name } = await Effect.runPromise(Backend.make(BACKEND))
  const flags = process.env["TF_FLAGS"]
  if (flags !== undefined) { for (const kv of flags.split(",")) tf.env().set(kv.split("=")[0]!, Number(kv.split("=")[1])) }
  const config = TfPolicy.policyConfigOf(policySettings(PRESETS.small))
  // the tfjs path op by op, whole step and parts alike (on WebGPU the policy otherwise trains through gpu-model.ts)
  process.env["VIRL_WEBGPU_FORWARD"] = "tfjs"
  const policy = TfPolicy.make(tf, config, new PythonRandom(1))
  const learner = policy.learner!
  const optimizer = AdamW.make({ ...PRESETS.small.optimizer_config, max_grad_norm: 1, grad_accum_steps: 1 })
  const samples = inputs.map((i) => learner.teacher(i, oracleText(i.info))!)
  const model = config.model
  const D = model.embedding
  const slots = slotCount(model.shape)
  console.log(`gpu-profile — backend ${name}, reps ${REPS}`)
  for (const B of BATCHES) {
    const batch = Array.from({ length: B }, (_, k) => samples[k % samples.length]!)
    const features = batch.map((s) => (s as unknown as { features: Features }).features)
    const step = async () => {
      const { gradients } = await Effect.runPromise(
        learner.gradients(
          batch,
          { thoughtWeight: 1, temperature: 1 },
          (ev) => ({ logProb: ev.logProbs.map(() => -1 / B), value: ev.values.map(() => 0), entropy: ev.entropies.map(() => 0) })
        )
      )
      optimizer.accumulate(learner.parameters(), gradients)
      learner.commit()
    }
    for (let i = 0; i < 3; i++) await step()
    let t = performance.now()
    for (let i = 0; i < REPS; i++) await step()
    const whole = (performance.now() - t) / REPS
    // the same work, part by part, on the policy's own variables (read through the engine's registry)
    const vars = tf.engine().registeredVariables
    const params: Record<string, Tensor> = {}
    for (const [k, v] of Object.entries(vars)) {
      const m = /^tfjs-vl#\d+\/(.+)$/.exec(k)
      if (m !== null) params[m[1]!] = v
    }
    const parts = { bags: 0, upload: 0, forward1: 0, taped: 0, readGrads: 0, tableGrad: 0, optimizer: 0, commit: 0 }
    let kernels = 0
    for (let r = 0; r < REPS; r++) {
      t = performance.now()
      const bagValues = bagsOfWords(features, learner.parameters().get(WORD_TABLE)!, D, slots)
      parts.bags += performance.now() - t
      t = performance.now()
      const bags = tf.variable(tf.tensor(bagValues, [B, slots, D]), true, `profile-bags-${r}`)
      const x = batchInputs(tf, model, features, bags)
      parts.upload += performance.now() - t
      t = performance.now()
      const first = tf.tidy(() => {
        const out = forward(tf, model, params, x)
        return [out.actionLogits, out.value]
      })
      await Promise.all(first.map((f) => f.data()))
      tf.dispose(first)
      parts.forward1 += performance.now() - t
      t = performance.now()
      const loss = () => {
        const out = forward(tf, model, params, x)
        return tf.add(tf.sum(tf.logSoftmax(out.actionLogits)), tf.sum(out.value)) as import("@tensorflow/tfjs-core").Scalar
      }
      const watched = [bags, ...Object.values(params).map((p) => p as import("@tensorflow/tfjs-core").Variable)]
      let result!: ReturnType<typeof tf.variableGrads>
      if (r === 0) {
        const info = await tf.profile(() => {
          result = tf.variableGrads(loss, watched)
          return result.value
        })
        kernels = info.kernels.length
      } else result = tf.variableGrads(loss, watched)
      parts.taped += performance.now() - t
      t = performance.now()
      const reads = await Promise.all(Object.values(result.grads).map((g) => g.data() as Promise<Float32Array>))
      parts.readGrads += performance.now() - t
      t = performance.now()
      tableGradient(features, reads[0]!, D, slots, model.shape.vocab)
      parts.tableGrad += performance.now() - t
      const gradients = new Map<string, Float32Array>()
      Object.keys(params).forEach((k, i) => gradients.set(k, Float32Array.from(reads[i + 1] ?? reads[0]!).subarray(0, learner.parameters().get(k)!.length)))
      t = performance.now()
      optimizer.accumulate(learner.parameters(), gradients)
      parts.optimizer += performance.now() - t
      t = performance.now()
      learner.commit()
      parts.commit += performance.now() - t
      tf.dispose([...Object.values(result.grads), result.value, bags, ...Object.values(x).filter((v) => v !== bags)])
    }
    const fmt = Object.entries(parts)
      .map(([k, v]) => `${k} ${(v / REPS).toFixed(2)}`)
      .join(", ")
    console.log(`B=${B}: whole step ${whole.toFixed(1)} ms (${((1000 * B) / whole).toFixed(0)} samples/s); parts (ms): ${fmt}; taped-pass kernels ${kernels}`)
  }
}

main().catch((e) => {
  console.error(e)
  process.exitCode = 1
})
