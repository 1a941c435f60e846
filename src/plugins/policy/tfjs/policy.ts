/**
 * The tfjs vision-language policy: it reads the prompt's text and the 2×2 grid and chooses the
 * action among those the prompt lists, the instruction among its sentences and the observation
 * description among texts built from it; its learner trains it (on the GPU through the fused
 * kernels of gpu-model.ts). layer.ts makes it the run's Policy layer.
 */
import { policyService } from "../service.ts"
import { Effect, Either, ParseResult, Schema } from "effect"
import {
  type Evaluation,
  type Learner,
  type OutputDistribution,
  PolicyError,
  type PolicyInput,
  type PolicyOutput,
  type PolicyService,
  type Sample
} from "../../../core/policy.ts"
import type { Rng } from "../../../core/random.ts"
import { NOT_FOUND, parseOutput } from "../../../domain/virl/output-parsing.ts"
import { adamwOnDevice } from "../../optimizer/adamw-gpu.ts"
import { drawn, logPartition, mostLikely } from "../sampling.ts"
import type { Tf } from "./backend.ts"
import { DEFAULT_SHAPE, type Features, readFeatures, slotCount } from "./features.ts"
import { makeGpuModel } from "./gpu-model.ts"
import {
  bagsOfWords,
  batchInputs,
  DEFAULT_MODEL,
  forward,
  initialParameters,
  type ModelConfig,
  parameterSpecs,
  tableGradient,
  WORD_TABLE,
  wordLists
} from "./model.ts"
import { textSetting } from "../../../core/settings.ts"

type Tensor = import("@tensorflow/tfjs-core").Tensor
type Variable = import("@tensorflow/tfjs-core").Variable

export const POLICY_NAME = "tfjs-vl"

/** One output as its three choices: the indices of the action, the sentence and the description (−1: none). */
interface TfSample extends Sample {
  readonly features: Features
  readonly action: number
  readonly instruction: number
  readonly observation: number
}

const PositiveInt = Schema.Int.pipe(Schema.positive())

/** A TfPolicyConfig as checkpoints store it. */
export const TfPolicyConfigSchema = Schema.Struct({
  model: Schema.Struct({
    shape: Schema.Struct({
      vocab: PositiveInt,
      maxSentences: PositiveInt,
      maxActions: PositiveInt,
      maxObservations: PositiveInt,
      maxContextWords: PositiveInt,
      maxCount: PositiveInt,
      imageSide: PositiveInt
    }),
    embedding: PositiveInt,
    hidden: PositiveInt,
    patch: PositiveInt,
    patchFeatures: PositiveInt
  }),
  /** Weight of the non-action parts of the output in its log-probability (spec §10). */
  thought_prob_coef: Schema.Number
})
export type TfPolicyConfig = typeof TfPolicyConfigSchema.Type

/** The configuration a checkpoint of this policy stores, or why it cannot be read as one. */
export const storedConfig = (policy: { readonly name: string; readonly config: unknown }): Either.Either<TfPolicyConfig, string> =>
  policy.name !== POLICY_NAME
    ? Either.left(`it holds a "${policy.name}" policy, not ${POLICY_NAME}`)
    : Either.mapLeft(Schema.decodeUnknownEither(TfPolicyConfigSchema)(policy.config), (e) =>
      `its policy config is not this version's: ${ParseResult.TreeFormatter.formatErrorSync(e)}`)

export const defaultPolicyConfig = (overrides: Partial<Omit<ModelConfig, "shape">> = {}): TfPolicyConfig => ({
  model: { shape: DEFAULT_SHAPE, ...DEFAULT_MODEL, ...overrides },
  thought_prob_coef: 0.5
})

/** log-softmax of logits[offset .. offset+n) / temperature. */
const logSoftmax = (logits: Float32Array, offset: number, n: number, temperature: number): number[] => {
  const { t, logZ } = logPartition(logits, offset, n, temperature)
  return Array.from({ length: n }, (_, k) => logits[offset + k] / t - logZ)
}

const choose = (logProbs: ReadonlyArray<number>, greedy: boolean, rng: Rng): number => {
  if (logProbs.length === 0) return -1
  return greedy ? mostLikely(logProbs) : drawn(logProbs, rng.random())
}

let instances = 0

/**
 * Where bags of words are summed: in JS from the table (`js`, the default) or by tensor ops over a
 * table variable (`tensor`: gather and segment sum, the table and its gradient on the device).
 * `tensor` acts faster on a GPU but trains slower (the gather's gradient is a segment sum over
 * the whole table), so training keeps `js` (docs/measurements.md).
 */
export type BagsOn = "js" | "tensor"

export const make = (
  tf: Tf,
  config: TfPolicyConfig,
  rng: Rng,
  initial?: Map<string, Float32Array>,
  options: { readonly bagsOn?: BagsOn } = {}
): PolicyService => {
  const specs = parameterSpecs(config.model)
  const values = initial ?? initialParameters(specs, rng)
  for (const spec of specs) {
    const v = values.get(spec.name)
    const n = spec.shape.reduce((a, b) => a * b, 1)
    if (v === undefined || v.length !== n) {
      throw new RangeError(`parameter ${spec.name}: expected ${n} values (shape ${spec.shape.join("×")}), got ${v?.length ?? "none"}`)
    }
  }
  const shape = config.model.shape
  const D = config.model.embedding
  const slots = slotCount(shape)
  const variables: Record<string, Variable> = {}
  // CPU backends read tensors synchronously (one taped pass per gradient); WebGPU cannot
  const syncReads = tf.getBackend() !== "webgpu"
  const bagsOn: BagsOn = options.bagsOn ?? "js"
  // tfjs variable names are global to its engine: each policy instance gets its own prefix
  const prefix = `${POLICY_NAME}#${++instances}`
  // tf.variable and assign keep their argument's memory alive: each temporary is disposed after
  const variable = (name: string, value: Float32Array, shape: ReadonlyArray<number>) => {
    const t = tf.tensor(value, [...shape])
    const v = tf.variable(t, true, name)
    t.dispose()
    return v
  }
  for (const spec of specs) {
    if (spec.name !== WORD_TABLE || bagsOn === "tensor") variables[spec.name] = variable(`${prefix}/${spec.name}`, values.get(spec.name)!, spec.shape)
  }
  /** [B, slots, D] bags of words: from the table in JS (a tensor to watch), or by tensor ops on the table variable. */
  const bagsOf = (features: ReadonlyArray<Features>): Tensor => {
    if (bagsOn === "js") return tf.tensor(bagsOfWords(features, values.get(WORD_TABLE)!, D, slots), [features.length, slots, D])
    const w = wordLists(features, slots)
    const picked = tf.mul(tf.gather(variables[WORD_TABLE], tf.tensor1d(w.rows, "int32")), tf.expandDims(tf.tensor1d(w.scales), 1))
    return tf.reshape(tf.unsortedSegmentSum(picked, tf.tensor1d(w.bags, "int32"), features.length * slots), [features.length, slots, D])
  }

  // on WebGPU, acting and gradients run as the model's own few dozen kernels (gpu-model.ts), not
  // op by op through tfjs; VIRL_WEBGPU_FORWARD=tfjs keeps them in tfjs
  const gpu = tf.getBackend() === "webgpu" && textSetting("VIRL_WEBGPU_FORWARD") !== "tfjs"
    ? makeGpuModel((tf.backend() as unknown as { device: GPUDevice }).device, config.model)
    : undefined
  gpu?.upload(values)
  // AdamW on the GPU (onDevice): its parameters and moments newer than `values` until settle()
  const adamw = adamwOnDevice(
    gpu === undefined || bagsOn !== "js"
      ? undefined
      : { use: gpu.useAdamW, lastStep: gpu.lastStep, restore: gpu.restoreAdamW, read: gpu.read },
    values
  )

  // GPU backends cannot read tensors synchronously: every read is awaited
  const outputs = async (features: ReadonlyArray<Features>) => {
    if (gpu !== undefined) return gpu.run(features)
    const [a, s, o, v] = tf.tidy(() => {
      const out = forward(tf, config.model, variables, batchInputs(tf, config.model, features, bagsOf(features)))
      return [out.actionLogits, out.sentenceLogits, out.observationLogits, out.value]
    })
    const read = await Promise.all([a, s, o, v].map((t) => t.data() as Promise<Float32Array>))
    tf.dispose([a, s, o, v])
    return { actions: read[0], sentences: read[1], observations: read[2], values: read[3] }
  }

  const partsOf = (f: Features, i: number, out: Awaited<ReturnType<typeof outputs>>, temperature: number) => ({
    action: logSoftmax(out.actions, i * shape.maxActions, f.actions.length, temperature),
    instruction: logSoftmax(out.sentences, i * shape.maxSentences, f.sentences.length, temperature),
    observation: logSoftmax(out.observations, i * shape.maxObservations, f.observations.length, temperature)
  })

  const act = async (inputs: ReadonlyArray<PolicyInput>, options: { temperature: number; greedy: boolean }): Promise<PolicyOutput[]> => {
    if (inputs.length === 0) return []
    const features = inputs.map((i) => readFeatures(i, shape))
    const out = await outputs(features)
    return features.map((f, i) => {
      if (f.actions.length === 0) return { text: "{}", logProb: 0, value: out.values[i] }
      const parts = partsOf(f, i, out, options.temperature)
      const action = choose(parts.action, options.greedy, rng)
      const instruction = choose(parts.instruction, options.greedy, rng)
      const observation = choose(parts.observation, options.greedy, rng)
      const text = JSON.stringify({
        "current observation": observation >= 0 ? f.observations[observation] : "",
        "current instruction": instruction >= 0 ? f.sentences[instruction] : "",
        action: f.actions[action]
      })
      const thought = (instruction >= 0 ? parts.instruction[instruction] : 0) + (observation >= 0 ? parts.observation[observation] : 0)
      const sample: TfSample = { policy: POLICY_NAME, features: f, action, instruction, observation }
      return { text, logProb: parts.action[action] + config.thought_prob_coef * thought, value: out.values[i], sample }
    })
  }

  const distributions = async (inputs: ReadonlyArray<PolicyInput>, options: { temperature: number }): Promise<OutputDistribution[]> => {
    if (inputs.length === 0) return []
    const features = inputs.map((i) => readFeatures(i, shape))
    const out = await outputs(features)
    return features.map((f, i) => ({ parts: partsOf(f, i, out, options.temperature) }))
  }

  const learner: Learner = {
    parameters: () => values,
    commit: () => {
      // the GPU's own update is newer than `values`: nothing to push
      if (adamw.ahead()) return
      // on the fused GPU path the tfjs variables are not read: only the GPU's copy is refreshed
      if (gpu !== undefined && bagsOn === "js") return gpu.upload(values)
      for (const spec of specs) {
        if (spec.name === WORD_TABLE && bagsOn === "js") continue
        const t = tf.tensor(values.get(spec.name)!, [...spec.shape])
        variables[spec.name].assign(t)
        t.dispose()
      }
      gpu?.upload(values)
    },
    onDevice: adamw.onDevice,
    settle: adamw.settle,
    teacher: (input, text) => {
      const features = readFeatures(input, shape)
      const parsed = parseOutput(text)
      if (typeof parsed.action !== "string" || parsed.action === NOT_FOUND) return undefined
      const action = features.actions.indexOf(parsed.action)
      if (action < 0) return undefined
      const sample: TfSample = {
        policy: POLICY_NAME,
        features,
        action,
        instruction: typeof parsed.instruction === "string" ? features.sentences.indexOf(parsed.instruction) : -1,
        observation: typeof parsed.observation === "string" ? features.observations.indexOf(parsed.observation) : -1
      }
      return sample
    },
    gradients: (samples, options, coefficients) =>
      Effect.tryPromise({
        try: async () => {
          const batch = samples as ReadonlyArray<TfSample>
          if (batch.some((s) => s.policy !== POLICY_NAME)) throw new RangeError(`samples from another policy cannot train ${POLICY_NAME}`)
          const B = batch.length
          const features = batch.map((s) => s.features)
          // on WebGPU: the fused kernels' forward pass and gradient (gpu-model.ts), read back once
          if (gpu !== undefined && bagsOn === "js") return await gpu.gradients(features, batch, options, coefficients)
          const oneHot = (n: number, pick: (s: TfSample) => number) => {
            const out = new Float32Array(B * n)
            batch.forEach((s, i) => {
              const k = pick(s)
              if (k >= 0) out[i * n + k] = 1
            })
            return tf.tensor(out, [B, n])
          }
          // js: the bags are a watched input whose gradient is turned into the table's in JS
          const bags = bagsOn === "js" ? variable(`${prefix}/bags`, bagsOfWords(features, values.get(WORD_TABLE)!, D, slots), [B, slots, D]) : undefined
          const t = Math.max(options.temperature, 1e-6)
          // the log-probability of each sample's output (thought parts weighted), its value and the action entropy
          const heads = () => {
            const out = forward(tf, config.model, variables, batchInputs(tf, config.model, features, bags ?? bagsOf(features)))
            const logP = tf.logSoftmax(tf.div(out.actionLogits, t))
            const chosen = (logits: Tensor, n: number, pick: (s: TfSample) => number) => tf.sum(tf.mul(tf.logSoftmax(tf.div(logits, t)), oneHot(n, pick)), 1)
            const lpAction = tf.sum(tf.mul(logP, oneHot(shape.maxActions, (s) => s.action)), 1)
            const lpThought = tf.add(
              chosen(out.sentenceLogits, shape.maxSentences, (s) => s.instruction),
              chosen(out.observationLogits, shape.maxObservations, (s) => s.observation)
            )
            return {
              logProb: tf.add(lpAction, tf.mul(options.thoughtWeight, lpThought)),
              value: out.value,
              entropy: tf.neg(tf.sum(tf.mul(tf.exp(logP), logP), 1))
            }
          }
          const surrogate = (h: ReturnType<typeof heads>, c: ReturnType<typeof coefficients>) =>
            tf.add(
              tf.add(tf.sum(tf.mul(h.logProb, tf.tensor(c.logProb as number[], [B]))), tf.sum(tf.mul(h.value, tf.tensor(c.value as number[], [B])))),
              tf.sum(tf.mul(h.entropy, tf.tensor(c.entropy as number[], [B])))
            ) as import("@tensorflow/tfjs-core").Scalar
          let evaluation: Evaluation | undefined
          const watched = [...(bags === undefined ? [] : [bags]), ...Object.values(variables)]
          let result: { grads: Record<string, Tensor>; value: Tensor }
          if (syncReads) {
            // one pass: the loss's coefficients depend on the evaluation, read inside the taped function
            result = tf.variableGrads(() => {
              const h = heads()
              evaluation = { logProbs: Array.from(h.logProb.dataSync()), values: Array.from(h.value.dataSync()), entropies: Array.from(h.entropy.dataSync()) }
              return surrogate(h, coefficients(evaluation))
            }, watched)
          } else {
            // a GPU cannot be read synchronously: evaluate, read, then differentiate a second pass
            const first = tf.tidy(() => {
              const h = heads()
              return [h.logProb, h.value, h.entropy]
            })
            const [lp, v, e] = await Promise.all(first.map((x) => x.data() as Promise<Float32Array>))
            tf.dispose(first)
            evaluation = { logProbs: Array.from(lp!), values: Array.from(v!), entropies: Array.from(e!) }
            const c = coefficients(evaluation)
            result = tf.variableGrads(() => surrogate(heads(), c), watched)
          }
          const { grads, value } = result
          const read = (x: Tensor): Promise<Float32Array> => (syncReads ? Promise.resolve(x.dataSync() as Float32Array) : (x.data() as Promise<Float32Array>))
          const gradients = new Map<string, Float32Array>()
          // all reads at once: on a GPU they overlap
          const dBags = bags === undefined ? undefined : grads[bags.name]
          const named = specs.filter((spec) => variables[spec.name] !== undefined)
          const reads = await Promise.all(
            [...named.map((spec) => grads[variables[spec.name].name]), dBags].map((g) => (g === undefined ? Promise.resolve(undefined) : read(g)))
          )
          named.forEach((spec, k) =>
            gradients.set(spec.name, reads[k] === undefined ? new Float32Array(values.get(spec.name)!.length) : Float32Array.from(reads[k]!))
          )
          if (bagsOn === "js") {
            const bagGradient = reads[named.length]
            gradients.set(
              WORD_TABLE,
              bagGradient === undefined ? new Float32Array(values.get(WORD_TABLE)!.length) : tableGradient(features, bagGradient, D, slots, shape.vocab)
            )
          }
          tf.dispose([...Object.values(grads), value, ...(bags === undefined ? [] : [bags])])
          return { gradients, evaluation: evaluation! }
        },
        catch: (e) => new PolicyError({ message: e instanceof RangeError ? e.message : `gradients: ${(e as Error).stack}` })
      })
  }

  const release = () => {
    tf.dispose(Object.values(variables))
    gpu?.destroy()
  }
  return policyService({ name: POLICY_NAME, config, act, distributions, learner, release })
}

export type { Tensor }
