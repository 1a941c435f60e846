/**
 * `npm run bench:generative`: the generative policy's training and sampling throughput per tfjs
 * backend (wasm on the CPU, WebGPU where Dawn finds a GPU) at its default architecture (width 64,
 * 4 heads, 1 encoder and 2 decoder blocks, 512 prompt tokens, a 32-pixel image in 16 patches, the
 * copy head). `npm run bench:gpu` runs it after the tfjs policy's bench.
 * Training: the learner's gradients of the whole answer's cross-entropy (teacher forcing, as SFT
 * and RFT compute them; PPO's are the same pass with other coefficients) + AdamW (on the GPU where
 * the learner runs it there, as training does) + commit.
 * Sampling: act() at temperature 1, answers written to their end token (at most 96 tokens).
 * Where python3 (or $PYTHON) has torch, the same network in PyTorch (bench/torch_generative.py)
 * trains on inputs of the same lengths, and the ratios are printed.
 *
 *   npm run bench:generative                    # BACKENDS=wasm,webgpu BATCHES=16,64
 *   scripts/gpu/run.sh npx tsx bench/generative.ts
 */
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as os from "node:os"
import * as path from "node:path"
import * as AdamW from "../src/plugins/optimizer/adamw.ts"
import { PRESETS } from "../src/app/config.ts"
import { textSetting } from "../src/core/settings.ts"
import { DEFAULT_ARCHITECTURE } from "../src/plugins/policy/generative/config.ts"
import { make } from "../src/plugins/policy/generative/policy.ts"
import { defaultVocabulary } from "../src/plugins/policy/generative/tokenizer.ts"
import { oracleText } from "../src/plugins/policy/oracle.ts"
import * as Backend from "../src/plugins/policy/tfjs/backend.ts"
import { PythonRandom } from "../src/plugins/random/python-random.ts"
import { oracleInputs } from "./inputs.ts"
import { msPerCall } from "./timing.ts"

const BACKENDS = (process.env["BACKENDS"] ?? "wasm,webgpu").split(",")
const BATCHES = (process.env["BATCHES"] ?? "16,64").split(",").map(Number)
const SECONDS = Number(process.env["SECONDS"] ?? 5)
/** Architecture keys to change, as JSON (e.g. ARCH='{"encoder_layers":0}'). */
const ARCH = { ...DEFAULT_ARCHITECTURE, ...(JSON.parse(process.env["ARCH"] ?? "{}") as object) }

let promptTokens = 0
let answerTokens = 0
const trained: Record<string, number> = {}

const main = async () => {
  const inputs = await oracleInputs(8)
  console.log(
    `bench:generative — ${inputs.length} distinct inputs, ${os.cpus().length} cores, Node ${process.version}, batches ${BATCHES.join("/")}, ${
      JSON.stringify(ARCH)
    }`
  )
  for (const requested of BACKENDS) {
    const started = await Effect.runPromise(Effect.either(Backend.make(requested)))
    if (started._tag === "Left") {
      console.log(`  ${requested}: not available — ${started.left.message}`)
      continue
    }
    const { tf } = started.right
    // on WebGPU the generator runs its own recorded kernels unless VIRL_WEBGPU_FORWARD=tfjs
    const name = started.right.name !== "webgpu" ? started.right.name : textSetting("VIRL_WEBGPU_FORWARD") === "tfjs" ? "webgpu-tfjs" : "webgpu"
    const policy = make(tf, { architecture: ARCH, vocabulary: defaultVocabulary(), thought_prob_coef: 0.5 }, new PythonRandom(1))
    const learner = policy.learner!
    // placed as training places it: on the GPU where the learner runs AdamW there
    const js = AdamW.make({ ...PRESETS.small.optimizer_config, max_grad_norm: 1, grad_accum_steps: 1 })
    const optimizer = learner.onDevice?.(AdamW.NAME, js) ?? js
    const samples = inputs.map((i) => learner.teacher(i, oracleText(i.info))!)
    const tokens = samples.reduce((n, s) => n + (s as unknown as { answer: Int32Array }).answer.length, 0) / samples.length
    promptTokens = samples.reduce((n, s) => n + (s as unknown as { prompt: Int32Array }).prompt.length, 0) / samples.length
    answerTokens = tokens
    for (const B of BATCHES) {
      const batch = Array.from({ length: B }, (_, k) => samples[k % samples.length]!)
      const acting = Array.from({ length: B }, (_, k) => inputs[k % inputs.length]!)
      const train = (B * 1000) / (await msPerCall(
        async () => {
          const { gradients } = await Effect.runPromise(
            learner.gradients(batch, { thoughtWeight: 1, temperature: 1 }, (ev) => ({
              logProb: ev.logProbs.map(() => -1 / B),
              value: ev.values.map(() => 0),
              entropy: ev.entropies.map(() => 0)
            }))
          )
          optimizer.accumulate(learner.parameters(), gradients)
          learner.commit()
        },
        SECONDS,
        1
      ))
      let written = 0
      const act = (B * 1000) / (await msPerCall(
        async () => {
          const out = await Effect.runPromise(policy.act(acting, { temperature: 1, greedy: false }))
          written = out.length
        },
        SECONDS,
        1
      ))
      trained[`${name}:${B}`] = train
      console.log(
        `  ${name.padEnd(11)} batch ${String(B).padStart(3)}: train ${train.toFixed(1).padStart(7)} answers/s (${
          (train * tokens).toFixed(0)
        } tokens/s)   sample ${act.toFixed(1).padStart(7)} answers/s (${written} per call)`
      )
    }
  }
  // the same network in PyTorch, on inputs of the lengths read above
  const torch = spawnSync(process.env["PYTHON"] ?? "python3", [
    path.join(import.meta.dirname, "torch_generative.py"),
    "--batches",
    BATCHES.join(","),
    "--prompt",
    String(Math.round(promptTokens)),
    "--answer",
    String(Math.round(answerTokens)),
    "--encoder-layers",
    String(ARCH.encoder_layers),
    ...(ARCH.copy ? ["--copy"] : []),
    "--seconds",
    String(SECONDS)
  ], { encoding: "utf8" })
  if (torch.status !== 0) {
    console.log(`  torch: not available (${(torch.stderr || torch.error?.message || "").trim().split("\n").pop()})`)
    return
  }
  for (const line of torch.stdout.trim().split("\n")) {
    const r = JSON.parse(line) as { batch: number; device: string; train_answers_per_s: number }
    const mine = Object.entries(trained).filter(([k]) => k.endsWith(`:${r.batch}`)).map(([k, v]) =>
      r.train_answers_per_s >= v
        ? `${k.split(":")[0]} ${(r.train_answers_per_s / v).toFixed(1)}× slower`
        : `${k.split(":")[0]} ${(v / r.train_answers_per_s).toFixed(1)}× faster`
    )
    console.log(
      `  torch-${r.device.padEnd(4)} batch ${String(r.batch).padStart(3)}: train ${r.train_answers_per_s.toFixed(1).padStart(7)} answers/s   (virl: ${
        mine.join(", ")
      })`
    )
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
