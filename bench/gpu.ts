/**
 * `npm run bench:gpu`: the small tfjs policy's training and acting throughput per backend —
 * wasm (CPU) and WebGPU (Dawn over Vulkan) — at several batch sizes, and, where python3 has torch,
 * the same model written in PyTorch (bench/torch_policy.py) on the same machine, as ratios.
 * One training step = the learner's gradients of a cross-entropy loss on the whole answer (as SFT,
 * RFT and PPO all compute them) + the optimizer's update + committing the weights back.
 *
 *   npm run bench:gpu                          # BACKENDS=wasm,webgpu BATCHES=32,128,512
 *   scripts/gpu/run.sh npm run bench:gpu       # on a GPU machine prepared by scripts/gpu/prepare.sh
 */
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as os from "node:os"
import * as path from "node:path"
import { PRESETS } from "../src/app/config.ts"
import { policySettings } from "../src/app/services.ts"
import * as AdamW from "../src/plugins/optimizer/adamw.ts"
import { oracleText } from "../src/plugins/policy/oracle.ts"
import * as Backend from "../src/plugins/policy/tfjs/backend.ts"
import * as TfPolicy from "../src/plugins/policy/tfjs/layer.ts"
import { type Features, slotCount } from "../src/plugins/policy/tfjs/features.ts"
import { bagsOfWords, tableGradient, WORD_TABLE } from "../src/plugins/policy/tfjs/model.ts"
import { PythonRandom } from "../src/plugins/random/python-random.ts"
import { oracleInputs } from "./inputs.ts"
import { msPerCall } from "./timing.ts"

const BACKENDS = (process.env["BACKENDS"] ?? "wasm,webgpu").split(",")
const BATCHES = (process.env["BATCHES"] ?? "32,128,512").split(",").map(Number)
const SECONDS = Number(process.env["SECONDS"] ?? 3)

/** Runs `step` (one batch) for SECONDS after a warm-up; returns samples per second. */
const rate = async (batch: number, step: () => Promise<unknown>): Promise<number> => (batch * 1000) / (await msPerCall(step, SECONDS, 2))

const main = async () => {
  const inputs = await oracleInputs(8)
  console.log(`bench:gpu — ${inputs.length} distinct inputs, ${os.cpus().length} cores, Node ${process.version}, batches ${BATCHES.join("/")}`)
  const table: Record<string, Record<number, { train: number; act: number }>> = {}
  for (const requested of BACKENDS) {
    const started = await Effect.runPromise(Effect.either(Backend.make(requested)))
    if (started._tag === "Left") {
      console.log(`  ${requested}: not available — ${started.left.message}`)
      continue
    }
    const { tf, name } = started.right
    const policy = TfPolicy.make(tf, TfPolicy.policyConfigOf(policySettings(PRESETS.small)), new PythonRandom(1))
    const learner = policy.learner!
    const jsOptimizer = AdamW.make({ ...PRESETS.small.optimizer_config, max_grad_norm: 1, grad_accum_steps: 1 })
    // as a run places it: on the GPU where the learner runs AdamW there
    const optimizer = learner.onDevice?.(AdamW.NAME, jsOptimizer) ?? jsOptimizer
    const samples = inputs.map((i) => learner.teacher(i, oracleText(i.info))!)
    table[name] = {}
    for (const B of BATCHES) {
      const batch = Array.from({ length: B }, (_, k) => samples[k % samples.length]!)
      const acting = Array.from({ length: B }, (_, k) => inputs[k % inputs.length]!)
      const train = await rate(B, async () => {
        const { gradients } = await Effect.runPromise(
          learner.gradients(batch, { thoughtWeight: 1, temperature: 1 }, (ev) => ({
            logProb: ev.logProbs.map(() => -1 / B),
            value: ev.values.map(() => 0),
            entropy: ev.entropies.map(() => 0)
          }))
        )
        optimizer.accumulate(learner.parameters(), gradients)
        learner.commit()
      })
      const act = await rate(B, () => Effect.runPromise(policy.act(acting, { temperature: 1, greedy: false })))
      table[name]![B] = { train, act }
      console.log(
        `  ${name.padEnd(7)} batch ${String(B).padStart(4)}: train ${train.toFixed(0).padStart(7)} samples/s   act ${act.toFixed(0).padStart(7)} samples/s`
      )
    }
    // where a training step's time goes, at the largest batch (mean of 5 steps, ms)
    const B = BATCHES[BATCHES.length - 1]!
    const batch = Array.from({ length: B }, (_, k) => samples[k % samples.length]!)
    const parts = { gradients: 0, optimizer: 0, commit: 0 }
    for (let i = 0; i < 5; i++) {
      let t = performance.now()
      const { gradients } = await Effect.runPromise(
        learner.gradients(
          batch,
          { thoughtWeight: 1, temperature: 1 },
          (ev) => ({ logProb: ev.logProbs.map(() => -1 / B), value: ev.values.map(() => 0), entropy: ev.entropies.map(() => 0) })
        )
      )
      parts.gradients += performance.now() - t
      t = performance.now()
      optimizer.accumulate(learner.parameters(), gradients)
      parts.optimizer += performance.now() - t
      t = performance.now()
      learner.commit()
      parts.commit += performance.now() - t
    }
    if (optimizer !== jsOptimizer) {
      console.log(
        `  ${name.padEnd(7)} batch ${String(B).padStart(4)} step breakdown (ms): gradients with AdamW's update, all on the GPU, ${
          (parts.gradients / 5).toFixed(1)
        }`
      )
      continue
    }
    const features = batch.map((s) => (s as unknown as { features: Features }).features)
    const shape = TfPolicy.policyConfigOf(policySettings(PRESETS.small)).model
    let t = performance.now()
    for (let i = 0; i < 5; i++) bagsOfWords(features, learner.parameters().get(WORD_TABLE)!, shape.embedding, slotCount(shape.shape))
    const bags = (performance.now() - t) / 5
    t = performance.now()
    const bagGrad = new Float32Array(B * slotCount(shape.shape) * shape.embedding)
    for (let i = 0; i < 5; i++) tableGradient(features, bagGrad, shape.embedding, slotCount(shape.shape), shape.shape.vocab)
    const tableGrad = (performance.now() - t) / 5
    console.log(
      `  ${name.padEnd(7)} batch ${String(B).padStart(4)} step breakdown (ms): gradients ${(parts.gradients / 5).toFixed(1)} (of which JS bags of words ${
        bags.toFixed(1)
      }, JS word-table gradient ${tableGrad.toFixed(1)}), optimizer ${(parts.optimizer / 5).toFixed(1)}, commit ${(parts.commit / 5).toFixed(1)}`
    )
  }
  const torch = spawnSync("python3", [path.join(import.meta.dirname, "torch_policy.py"), "--batches", BATCHES.join(","), "--seconds", String(SECONDS)], {
    encoding: "utf8"
  })
  if (torch.status === 0) {
    for (const line of torch.stdout.trim().split("\n")) {
      const r = JSON.parse(line) as { batch: number; device: string; train_samples_per_s: number; act_samples_per_s: number }
      table[`torch-${r.device}`] ??= {}
      table[`torch-${r.device}`]![r.batch] = { train: r.train_samples_per_s, act: r.act_samples_per_s }
      console.log(
        `  torch-${r.device.padEnd(4)} batch ${String(r.batch).padStart(4)}: train ${r.train_samples_per_s.toFixed(0).padStart(7)} samples/s   act ${
          r.act_samples_per_s.toFixed(0).padStart(7)
        } samples/s`
      )
    }
  } else console.log(`  torch: not available (${(torch.stderr || torch.error?.message || "").trim().split("\n").pop()})`)
  const names = Object.keys(table)
  const base = names.find((n) => n.startsWith("torch")) ?? names[0]
  if (base !== undefined) {
    console.log(`ratios to ${base} (train / act; > 1 means slower than ${base}):`)
    for (const n of names.filter((x) => x !== base)) {
      const cells = BATCHES.map((B) => {
        const a = table[n]![B]
        const b = table[base]![B]
        return a === undefined || b === undefined ? "—" : `B${B} ${(b.train / a.train).toFixed(1)}× / ${(b.act / a.act).toFixed(1)}×`
      })
      console.log(`  ${n.padEnd(10)} ${cells.join("   ")}`)
    }
  }
}

main().catch((e) => {
  console.error(e)
  process.exitCode = 1
})
