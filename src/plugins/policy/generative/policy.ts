/**
 * A policy that writes its answer: the network of model.ts reads the conversation's tokens and
 * the grid image and generates the answer token by token (sampled at a temperature, or greedy).
 * Whatever it writes goes to the environment's parser and verifier as it is — malformed JSON, an
 * action outside the action space — and is scored as the reference scores it. The log-probability
 * of an answer is the sum over its tokens, those before the `"action"` key weighted by
 * `thought_prob_coef` (spec §10); its learner trains on the same sums (teacher forcing for SFT
 * and RFT, per-token ratios for PPO through the weighted sum). Its output distributions are the
 * per-token distributions along a given answer, so KL(base ‖ policy) is measured over text.
 * Its configuration is config.ts, what it reads of an input inputs.ts, decoding's bookkeeping
 * decoding.ts, the GPU network gpu-network.ts.
 */
import { policyService } from "../service.ts"
import { Effect } from "effect"
import {
  type Evaluation,
  type Learner,
  type LossCoefficients,
  type OutputDistribution,
  PolicyError,
  type PolicyInput,
  type PolicyOutput,
  type PolicyService,
  type Sample
} from "../../../core/policy.ts"
import type { OptimizerState } from "../../../core/optimizer.ts"
import type { Rng } from "../../../core/random.ts"
import { textSetting } from "../../../core/settings.ts"
import { adamwOnDevice } from "../../optimizer/adamw-gpu.ts"
import type { Tf } from "../tfjs/backend.ts"
import { type GpuNetwork, makeGpuNetwork } from "./gpu-network.ts"
import { addCopy, initialParameters, network, parameterSpecs, patchCount, patchSize } from "./model.ts"
import { type DecodeOptions, makeDecoding } from "./decoding.ts"
import { decodeOnGpu } from "./gpu-decoding.ts"
import { checkArchitecture, type GenerativeConfig, POLICY_NAME, shapeOf } from "./config.ts"
import { actionTokens, padded, readInput } from "./inputs.ts"
import { BOS, EOS, makeTokenizer, PAD } from "./tokenizer.ts"

type Tensor = import("@tensorflow/tfjs-core").Tensor
type Variable = import("@tensorflow/tfjs-core").Variable

/** One answer as the learner replays it: what was read, the tokens written (end included) and which of them are the action's. */
interface GenerativeSample extends Sample {
  readonly prompt: Int32Array
  readonly patches: Float32Array
  readonly answer: Int32Array
  /** 1 for a token at or after the `"action"` key (and the end token), 0 for a thought token. */
  readonly action: Uint8Array
}

let instances = 0
let embeddings = 0

/** Inputs per forward pass when acting or measuring (bounds the memory of a long evaluation). */
const CHUNK = 64
/** Samples per taped pass when training (attention over a 512-token prompt at batch 128 ran out of wasm's memory). */
const MICRO = 16
/** On the GPU's own kernels: inputs per decoding batch, samples per training pass (fewer where the GPU's largest binding is small). */
const GPU_CHUNK = 256
const GPU_MICRO = 128
/** Decoding steps per submission on the GPU's own kernels (steps past every row's end are wasted, a read-back per step costs more). */
const GPU_STEPS = 16

export const make = (tf: Tf, config: GenerativeConfig, rng: Rng, initial?: Map<string, Float32Array>): PolicyService => {
  checkArchitecture(config.architecture)
  const shape = shapeOf(config)
  const tokenizer = makeTokenizer(config.vocabulary)
  const specs = parameterSpecs(shape)
  const values = initial ?? initialParameters(specs, rng)
  for (const spec of specs) {
    const n = spec.shape.reduce((a, b) => a * b, 1)
    const v = values.get(spec.name)
    if (v === undefined || v.length !== n) {
      throw new RangeError(`parameter ${spec.name}: expected ${n} values (shape ${spec.shape.join("×")}), got ${v?.length ?? "none"}`)
    }
  }
  const prefix = `${POLICY_NAME}#${++instances}`
  const variables: Record<string, Variable> = {}
  for (const spec of specs) {
    const t = tf.tensor(values.get(spec.name)!, [...spec.shape])
    variables[spec.name] = tf.variable(t, true, `${prefix}/${spec.name}`)
    t.dispose()
  }
  const net = network(tf, shape, variables, tokenizer.bare)
  const syncReads = tf.getBackend() !== "webgpu"
  // on WebGPU the network runs as its own recorded kernels (gpu-network.ts), not op by op
  // through tfjs; VIRL_WEBGPU_FORWARD=tfjs keeps it in tfjs
  const gpu: GpuNetwork | undefined = tf.getBackend() === "webgpu" && textSetting("VIRL_WEBGPU_FORWARD") !== "tfjs"
    ? makeGpuNetwork((tf.backend() as unknown as { device: GPUDevice }).device, shape, tokenizer.bare)
    : undefined
  /** Arrays by parameter (the parameters, a moment) as the GPU network's one flat array (a missing one zero), and back. */
  const flatOf = (arrays: ReadonlyMap<string, Float32Array>): Float32Array => gpu!.layout.flatten(arrays)
  const flat = (): Float32Array => flatOf(values)
  const unflat = (x: Float32Array): Map<string, Float32Array> => gpu!.layout.split(x, { copy: true })
  gpu?.upload(flat())
  const V = shape.vocab
  const D = shape.width
  const N = patchCount(shape)
  const S = patchSize(shape)

  /** The prompt's tokens (its first and last halves when longer than the network reads) and the image's patches. */
  const read = (input: PolicyInput) => readInput(shape, tokenizer, input)

  /** Prompts padded to the batch's longest, and the patches: tensors for the encoder (and the padded ids, as numbers). */
  const encoderInputs = (batch: ReadonlyArray<{ prompt: Int32Array; patches: Float32Array }>) => {
    const { ids, longest, patches } = padded(shape, batch)
    return { ids, prompt: tf.tensor(ids, [batch.length, longest], "int32"), patches: tf.tensor(patches, [batch.length, N, S]) }
  }

  /** 1 for the tokens at or after the `"action"` key, and for the end token. */
  const actionMask = (ids: ReadonlyArray<number>) => actionTokens(tokenizer, ids)

  const reads = async (tensors: ReadonlyArray<Tensor>): Promise<Float32Array[]> => {
    const out = await Promise.all(tensors.map((t) => t.data() as Promise<Float32Array>))
    tf.dispose([...tensors])
    return out
  }

  /**
   * Writes answers for one chunk of inputs, or (with `along`) replays given ones. Returns per
   * input: the token ids (end included), the per-token log-probabilities of the tokens written
   * at `temperature`, the value, and with `full` each position's whole log-distribution.
   */
  const generate = async (
    batch: ReadonlyArray<{ prompt: Int32Array; patches: Float32Array }>,
    options: DecodeOptions
  ) => {
    if (gpu !== undefined) return generateOnGpu(batch, options)
    const B = batch.length
    const enc = encoderInputs(batch)
    const layers = shape.decoderLayers
    // the encoder's output and the cross-attention's keys and values, once; then one token a step, self-attention from a cache
    const [mask, ...kept] = tf.tidy(() => {
      const e = net.encode(enc.prompt, enc.patches)
      const copy = e.copy === undefined ? [] : [e.copy.keys, e.copy.mask]
      return [e.mask, ...copy, ...net.crossCache(e.memory).flatMap((c) => [c.k, c.v])]
    })
    tf.dispose([enc.prompt, enc.patches])
    // a step reads the copy head's keys and mask; its share of the logits is added here by index (addCopy)
    const copy = shape.copy ? { keys: kept[0]!, mask: kept[1]! } : undefined
    const crossFlat = kept.slice(shape.copy ? 2 : 0)
    const cross = Array.from({ length: layers }, (_, l) => ({ k: crossFlat[2 * l]!, v: crossFlat[2 * l + 1]! }))
    let past: Array<{ k: Tensor; v: Tensor }> | undefined
    const w = writing(B, options)
    const { done } = w
    let values: Float32Array | undefined
    const T = shape.answerTokens
    try {
      for (let t = 0; t < T && done.some((x) => !x); t++) {
        const inputs = Int32Array.from(w.written, (row) => (t === 0 ? BOS : (row[t - 1] ?? PAD)))
        const [logitsT, value, ...rest] = tf.tidy(() => {
          const out = net.step(tf.tensor(inputs, [B, 1], "int32"), t, mask!, cross, past, copy)
          return [out.logits, out.value, ...(out.copied === undefined ? [] : [out.copied.attend, out.copied.strength]), ...out.cache.flatMap((c) => [c.k, c.v])]
        })
        const copiedT = copy === undefined ? [] : rest.slice(0, 2)
        const cacheFlat = rest.slice(copiedT.length)
        if (past !== undefined) tf.dispose(past.flatMap((c) => [c.k, c.v]))
        past = Array.from({ length: layers }, (_, l) => ({ k: cacheFlat[2 * l]!, v: cacheFlat[2 * l + 1]! }))
        const [logits, v, attend, strength] = await reads([logitsT!, value!, ...copiedT])
        if (attend !== undefined) addCopy(logits!, { attend, strength: strength! }, enc.ids, tokenizer.bare, V)
        if (t === 0) values = v
        fromLogits(w, logits!, t, options)
      }
    } finally {
      tf.dispose([mask!, ...kept, ...(past ?? []).flatMap((c) => [c.k, c.v])])
    }
    return { written: w.written, logProbs: w.logProbs, values: values ?? new Float32Array(B), distributions: w.distributions }
  }

  const decoding = makeDecoding(rng, V, shape.answerTokens)
  const { writing, fromLogits } = decoding

  /** `generate` on the GPU's own kernels (gpu-decoding.ts). */
  const generateOnGpu = (batch: ReadonlyArray<{ prompt: Int32Array; patches: Float32Array }>, options: DecodeOptions) =>
    decodeOnGpu(gpu!, decoding, { answerTokens: shape.answerTokens, stepsPerSubmission: GPU_STEPS }, batch, options)

  const chunked = async <A>(n: number, run: (start: number, end: number) => Promise<A[]>): Promise<A[]> => {
    const out: A[] = []
    const size = gpu === undefined ? CHUNK : Math.min(GPU_CHUNK, gpu.capacity(false))
    for (let start = 0; start < n; start += size) out.push(...(await run(start, Math.min(n, start + size))))
    return out
  }

  const act = (inputs: ReadonlyArray<PolicyInput>, options: { temperature: number; greedy: boolean }): Promise<PolicyOutput[]> =>
    chunked(inputs.length, async (start, end) => {
      const batch = inputs.slice(start, end).map(read)
      const g = await generate(batch, options)
      return batch.map((b, i) => {
        const ids = g.written[i]!
        const action = actionMask(ids)
        const logProb = g.logProbs[i]!.reduce((sum, lp, k) => sum + (action[k] === 1 ? lp : config.thought_prob_coef * lp), 0)
        const sample: GenerativeSample = { policy: POLICY_NAME, prompt: b.prompt, patches: b.patches, answer: Int32Array.from(ids), action }
        return { text: tokenizer.decode(ids), logProb, value: g.values[i]!, sample }
      })
    })

  /**
   * Per-token distributions along an answer — `along[i]`, or this policy's own greedy answer —
   * as parts t0, t1, …: two policies' parts line up when they replay the same answer.
   */
  const distributions = (inputs: ReadonlyArray<PolicyInput>, options: { temperature: number; along?: ReadonlyArray<string> }): Promise<OutputDistribution[]> =>
    chunked(inputs.length, async (start, end) => {
      const batch = inputs.slice(start, end).map(read)
      // the answers' own tokenization (a text written token by token may tokenize otherwise when read back)
      const texts = options.along?.slice(start, end) ??
        (await generate(batch, { temperature: options.temperature, greedy: true })).written.map((ids) => tokenizer.decode(ids))
      const along = texts.map((text) => [...tokenizer.encode(text), EOS].slice(0, shape.answerTokens))
      const g = await generate(batch, { temperature: options.temperature, greedy: true, full: true, along })
      return batch.map((_, i) => ({
        parts: Object.fromEntries(g.distributions[i]!.map((lp, k) => [`t${k}`, Array.from(lp)])),
        along: tokenizer.decode(g.written[i]!)
      }))
    })

  // AdamW on the GPU (onDevice): its parameters and moments newer than `values` until settle()
  const byName = (moments: OptimizerState["moments"], k: "m" | "v") => new Map([...moments].map(([name, mo]) => [name, mo[k]]))
  const adamw = adamwOnDevice(
    gpu === undefined ? undefined : {
      use: gpu.useAdamW,
      lastStep: gpu.lastStep,
      restore: (step, moments) => gpu.restoreAdamW(step, flatOf(byName(moments, "m")), flatOf(byName(moments, "v"))),
      read: async () => {
        const read = await gpu.read()
        return { parameters: unflat(read.parameters), m: unflat(read.m), v: unflat(read.v) }
      }
    },
    values
  )

  const learner: Learner = {
    parameters: () => values,
    commit: () => {
      // the GPU's own update is newer than `values`: nothing to push
      if (adamw.ahead()) return
      if (gpu !== undefined) return gpu.upload(flat())
      for (const spec of specs) {
        const t = tf.tensor(values.get(spec.name)!, [...spec.shape])
        variables[spec.name]!.assign(t)
        t.dispose()
      }
    },
    onDevice: adamw.onDevice,
    settle: adamw.settle,
    teacher: (input, text) => {
      const ids = [...tokenizer.encode(text), EOS]
      if (ids.length > shape.answerTokens) return undefined
      const { prompt, patches } = read(input)
      const sample: GenerativeSample = { policy: POLICY_NAME, prompt, patches, answer: Int32Array.from(ids), action: actionMask(ids) }
      return sample
    },
    gradients: (samples, options, coefficients) =>
      Effect.tryPromise({
        try: async () => {
          const batch = samples as ReadonlyArray<GenerativeSample>
          if (batch.some((s) => s.policy !== POLICY_NAME)) throw new RangeError(`samples from another policy cannot train ${POLICY_NAME}`)
          if (gpu !== undefined) return await gradientsOnGpu(batch, options, coefficients)
          const parts = Array.from({ length: Math.ceil(batch.length / MICRO) }, (_, k) => batch.slice(k * MICRO, (k + 1) * MICRO))
          if (parts.length === 1 && syncReads) {
            // one pass: the loss's coefficients depend on the evaluation, read inside the taped function
            let evaluation: Evaluation | undefined
            const gradients = await differentiate(batch, options, (ev) => {
              evaluation = ev
              return coefficients(ev)
            })
            return { gradients, evaluation: evaluation! }
          }
          // micro-batches (attention over a long prompt is quadratic in memory): evaluate them all,
          // then differentiate each with its share of the whole batch's coefficients, gradients summed
          const evaluations: Evaluation[] = []
          for (const part of parts) evaluations.push(await evaluate(part, options))
          const evaluation: Evaluation = {
            logProbs: evaluations.flatMap((e) => e.logProbs),
            values: evaluations.flatMap((e) => e.values),
            entropies: evaluations.flatMap((e) => e.entropies)
          }
          const c = coefficients(evaluation)
          const gradients = new Map([...values].map(([name, v]) => [name, new Float32Array(v.length)]))
          let at = 0
          for (const part of parts) {
            const n = part.length
            const slice = (xs: ReadonlyArray<number>) => xs.slice(at, at + n)
            const g = await differentiate(part, options, () => ({ logProb: slice(c.logProb), value: slice(c.value), entropy: slice(c.entropy) }))
            for (const [name, sum] of gradients) {
              const add = g.get(name)!
              for (let i = 0; i < sum.length; i++) sum[i] += add[i]!
            }
            at += n
          }
          return { gradients, evaluation }
        },
        catch: (e) => new PolicyError({ message: e instanceof RangeError ? e.message : `gradients: ${(e as Error).stack}` })
      })
  }

  /** A micro-batch as the GPU's training graph reads it. */
  const gpuBatch = (batch: ReadonlyArray<GenerativeSample>, thoughtWeight: number) => ({
    prompts: batch.map((s) => s.prompt),
    patches: batch.map((s) => s.patches),
    inputs: batch.map((s) => Int32Array.from([BOS, ...s.answer.subarray(0, s.answer.length - 1)])),
    targets: batch.map((s) => s.answer),
    weights: batch.map((s) => Float32Array.from(s.action, (a) => (a === 1 ? 1 : thoughtWeight)))
  })

  /**
   * The learner's gradient on the GPU's own kernels: one forward pass per micro-batch, the
   * coefficients from the whole batch's evaluation, one backward pass (a batch of several
   * micro-batches runs each one's forward pass again before its backward pass).
   */
  const gradientsOnGpu = async (
    batch: ReadonlyArray<GenerativeSample>,
    options: { readonly thoughtWeight: number; readonly temperature: number },
    coefficients: (evaluation: Evaluation) => LossCoefficients
  ) => {
    const micro = Math.min(GPU_MICRO, gpu!.capacity(true))
    const parts = Array.from(
      { length: Math.ceil(batch.length / micro) },
      (_, k) => gpuBatch(batch.slice(k * micro, (k + 1) * micro), options.thoughtWeight)
    )
    const evaluations = []
    for (const part of parts) evaluations.push(await gpu!.evaluate(part, options.temperature))
    const evaluation: Evaluation = {
      logProbs: evaluations.flatMap((e) => Array.from(e.logProbs)),
      values: evaluations.flatMap((e) => Array.from(e.values)),
      entropies: evaluations.flatMap((e) => Array.from(e.entropies))
    }
    const c = coefficients(evaluation)
    // the parts' gradients add up on the GPU; after the last, AdamW's step there or the sum read out
    let sum: Float32Array | undefined
    let at = 0
    for (const [k, part] of parts.entries()) {
      const n = part.prompts.length
      if (parts.length > 1) await gpu!.evaluate(part, options.temperature)
      const g = await gpu!.backward(
        { logProb: c.logProb.slice(at, at + n), value: c.value.slice(at, at + n), entropy: c.entropy.slice(at, at + n) },
        options.temperature,
        { first: k === 0, last: k === parts.length - 1 }
      )
      if (g !== undefined) sum = g
      at += n
    }
    return { gradients: sum === undefined ? new Map<string, Float32Array>() : unflat(sum), evaluation }
  }

  /**
   * One micro-batch's tensors and the log-probability (thought tokens weighted), value and
   * entropy of each answer: `heads()` runs the network (inside a taped function or a tidy).
   */
  const prepare = (batch: ReadonlyArray<GenerativeSample>, options: { readonly thoughtWeight: number; readonly temperature: number }) => {
    const B = batch.length
    const T = Math.max(...batch.map((s) => s.answer.length))
    const inputs = new Int32Array(B * T).fill(PAD)
    const targets = new Int32Array(B * T).fill(PAD)
    const weights = new Float32Array(B * T)
    const present = new Float32Array(B * T)
    batch.forEach((s, i) => {
      inputs[i * T] = BOS
      for (let k = 0; k < s.answer.length; k++) {
        if (k + 1 < T) inputs[i * T + k + 1] = s.answer[k]!
        targets[i * T + k] = s.answer[k]!
        weights[i * T + k] = s.action[k] === 1 ? 1 : options.thoughtWeight
        present[i * T + k] = 1
      }
    })
    const enc = encoderInputs(batch)
    const t = Math.max(options.temperature, 1e-6)
    // the input tokens' embeddings looked up here, watched, their gradient added to the table's in JS
    // (tfjs's gather has no gradient kernel on wasm); the output projection's share comes from tfjs
    const table = values.get("token_embedding")!
    const promptIds = enc.ids
    const lookedUp = (ids: Int32Array, dims: [number, number]) => {
      const out = new Float32Array(ids.length * D)
      for (let k = 0; k < ids.length; k++) out.set(table.subarray(ids[k]! * D, ids[k]! * D + D), k * D)
      const x = tf.tensor(out, [...dims, D])
      const v = tf.variable(x, true, `${prefix}/embedded#${++embeddings}`)
      x.dispose()
      return v
    }
    const promptIn = lookedUp(promptIds, enc.prompt.shape as [number, number])
    const answerIn = lookedUp(inputs, [B, T])
    const heads = () => {
      const { memory, mask, copy } = net.encode(enc.prompt, enc.patches, promptIn)
      const out = net.decode(memory, mask, tf.tensor(inputs, [B, T], "int32"), answerIn, copy)
      const logP = tf.logSoftmax(tf.div(out.logits, t))
      const chosen = tf.sum(tf.mul(logP, tf.oneHot(tf.tensor(targets, [B, T], "int32"), V)), 2)
      const entropy = tf.neg(tf.sum(tf.mul(tf.exp(logP), logP), 2))
      return {
        logProb: tf.sum(tf.mul(chosen, tf.tensor(weights, [B, T])), 1),
        value: out.value,
        entropy: tf.sum(tf.mul(entropy, tf.tensor(present, [B, T])), 1)
      }
    }
    const release = () => tf.dispose([enc.prompt, enc.patches, promptIn, answerIn])
    return { B, heads, release, embedded: [[promptIn, promptIds], [answerIn, inputs]] as const }
  }

  /** A micro-batch's evaluation, no gradient. */
  const evaluate = async (
    batch: ReadonlyArray<GenerativeSample>,
    options: { readonly thoughtWeight: number; readonly temperature: number }
  ): Promise<Evaluation> => {
    const prepared = prepare(batch, options)
    try {
      const out = tf.tidy(() => {
        const h = prepared.heads()
        return [h.logProb, h.value, h.entropy]
      })
      const [lp, v, e] = await reads(out)
      return { logProbs: Array.from(lp!), values: Array.from(v!), entropies: Array.from(e!) }
    } finally {
      prepared.release()
    }
  }

  /**
   * The gradient of Σ c·(log-probability, value, entropy) over a micro-batch, by parameter. On a
   * CPU backend the coefficients may be computed from the evaluation inside the taped pass.
   */
  const differentiate = async (
    batch: ReadonlyArray<GenerativeSample>,
    options: { readonly thoughtWeight: number; readonly temperature: number },
    coefficients: (evaluation: Evaluation) => LossCoefficients
  ): Promise<Map<string, Float32Array>> => {
    const prepared = prepare(batch, options)
    const B = prepared.B
    try {
      const vector = (xs: ReadonlyArray<number>) => tf.tensor(xs as number[], [B])
      const result = tf.variableGrads(() => {
        const h = prepared.heads()
        const c = coefficients(
          syncReads
            ? { logProbs: Array.from(h.logProb.dataSync()), values: Array.from(h.value.dataSync()), entropies: Array.from(h.entropy.dataSync()) }
            : { logProbs: [], values: [], entropies: [] }
        )
        return tf.addN([
          tf.sum(tf.mul(h.logProb, vector(c.logProb))),
          tf.sum(tf.mul(h.value, vector(c.value))),
          tf.sum(tf.mul(h.entropy, vector(c.entropy)))
        ]) as import("@tensorflow/tfjs-core").Scalar
      }, [...Object.values(variables), ...prepared.embedded.map(([x]) => x)])
      const gradients = new Map<string, Float32Array>()
      const arrays = await Promise.all(specs.map((spec) => {
        const g = result.grads[variables[spec.name]!.name]
        return g === undefined ? Promise.resolve(undefined) : (g.data() as Promise<Float32Array>)
      }))
      specs.forEach((spec, k) =>
        gradients.set(spec.name, arrays[k] === undefined ? new Float32Array(values.get(spec.name)!.length) : Float32Array.from(arrays[k]!))
      )
      const dTable = gradients.get("token_embedding")!
      for (const [x, ids] of prepared.embedded) {
        const g = result.grads[x.name]
        if (g === undefined) continue
        const dx = (await g.data()) as Float32Array
        for (let k = 0; k < ids.length; k++) {
          const row = ids[k]! * D
          for (let j = 0; j < D; j++) dTable[row + j] += dx[k * D + j]!
        }
      }
      tf.dispose([...Object.values(result.grads), result.value])
      return gradients
    } finally {
      prepared.release()
    }
  }

  const release = () => {
    tf.dispose(Object.values(variables))
    gpu?.destroy()
  }
  return policyService({ name: POLICY_NAME, config, act, distributions, learner, release })
}
