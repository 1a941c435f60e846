import { Effect, Layer } from "effect"
import { Policy, PolicyError, type Evaluation, type Learner, type PolicyInput, type PolicyOutput, type PolicyService, type Sample } from "../../../core/policy.ts"
import { Random, type Rng } from "../../../core/random.ts"
import { NOT_FOUND, parseOutput } from "../../environment/virl/output-parsing.ts"
import { Backend, type Tf } from "./backend.ts"
import { DEFAULT_SHAPE, readFeatures, type Features } from "./features.ts"
import { batchTensors, DEFAULT_MODEL, forward, initialParameters, parameterSpecs, type ModelConfig } from "./model.ts"

type Tensor = import("@tensorflow/tfjs-core").Tensor
type Variable = import("@tensorflow/tfjs-core").Variable

export const POLICY_NAME = "tfjs-vl"

/** What the policy writes in "current observation": whether it believes it stands at an intersection. */
const AT_INTERSECTION = "You observe an intersection"
const NOT_AT_INTERSECTION = "No intersection in sight"

interface TfSample extends Sample {
  readonly features: Features
  readonly action: number
  /** The sentence chosen as "current instruction"; −1 when the text names none of them. */
  readonly instruction: number
  readonly observation: 0 | 1
}

export interface TfPolicyConfig {
  readonly model: ModelConfig
  /** Weight of the non-action parts of the output in its log-probability (spec §10). */
  readonly thought_prob_coef: number
}

export const defaultPolicyConfig = (overrides: Partial<Omit<ModelConfig, "shape">> = {}): TfPolicyConfig => ({
  model: { shape: DEFAULT_SHAPE, ...DEFAULT_MODEL, ...overrides },
  thought_prob_coef: 0.5
})

const logSigmoid = (z: number) => (z >= 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z)))

const sampleIndex = (logits: Float32Array, offset: number, n: number, temperature: number, greedy: boolean, rng: Rng): { index: number; logProb: number } => {
  const t = Math.max(temperature, 1e-6)
  let max = -Infinity
  for (let k = 0; k < n; k++) max = Math.max(max, logits[offset + k] / t)
  let sum = 0
  for (let k = 0; k < n; k++) sum += Math.exp(logits[offset + k] / t - max)
  const logZ = max + Math.log(sum)
  let index = 0
  if (greedy) {
    for (let k = 1; k < n; k++) if (logits[offset + k] > logits[offset + index]) index = k
  } else {
    let u = rng.random()
    for (index = 0; index < n - 1; index++) {
      u -= Math.exp(logits[offset + index] / t - logZ)
      if (u < 0) break
    }
  }
  return { index, logProb: logits[offset + index] / t - logZ }
}

let instances = 0

export const make = (tf: Tf, config: TfPolicyConfig, rng: Rng, initial?: Map<string, Float32Array>): PolicyService => {
  const specs = parameterSpecs(config.model)
  const values = initial ?? initialParameters(specs, rng)
  for (const spec of specs) {
    const v = values.get(spec.name)
    const n = spec.shape.reduce((a, b) => a * b, 1)
    if (v === undefined || v.length !== n) throw new PolicyError({ message: `parameter ${spec.name}: expected ${n} values, got ${v?.length ?? "none"}` })
  }
  const variables: Record<string, Variable> = {}
  // tfjs variable names are global to its engine: each policy instance gets its own prefix
  const prefix = `${POLICY_NAME}#${++instances}`
  for (const spec of specs) variables[spec.name] = tf.variable(tf.tensor(values.get(spec.name)!, [...spec.shape]), true, `${prefix}/${spec.name}`)
  const { shape } = config.model

  const act = (inputs: ReadonlyArray<PolicyInput>, options: { temperature: number; greedy: boolean }): PolicyOutput[] => {
    if (inputs.length === 0) return []
    const features = inputs.map((i) => readFeatures(i, shape))
    const [actionLogits, sentenceLogits, obsLogit, value] = tf.tidy(() => {
      const out = forward(tf, config.model, variables, batchTensors(tf, config.model, features))
      return [out.actionLogits, out.sentenceLogits, out.observationLogit, out.value]
    })
    const a = actionLogits.dataSync() as Float32Array
    const s = sentenceLogits.dataSync() as Float32Array
    const o = obsLogit.dataSync() as Float32Array
    const v = value.dataSync() as Float32Array
    tf.dispose([actionLogits, sentenceLogits, obsLogit, value])
    const C = shape.maxActions
    const S = shape.maxSentences
    return features.map((f, i) => {
      if (f.actions.length === 0) return { text: "{}", logProb: 0, value: v[i] }
      const action = sampleIndex(a, i * C, f.actions.length, options.temperature, options.greedy, rng)
      const instruction =
        f.sentences.length > 0 ? sampleIndex(s, i * S, f.sentences.length, options.temperature, options.greedy, rng) : { index: -1, logProb: 0 }
      const pAt = 1 / (1 + Math.exp(-o[i] / Math.max(options.temperature, 1e-6)))
      const atIntersection = options.greedy ? pAt >= 0.5 : rng.random() < pAt
      const obsLogProb = logSigmoid((atIntersection ? 1 : -1) * (o[i] / Math.max(options.temperature, 1e-6)))
      const text = JSON.stringify({
        "current observation": atIntersection ? AT_INTERSECTION : NOT_AT_INTERSECTION,
        "current instruction": instruction.index >= 0 ? f.sentences[instruction.index] : "",
        action: f.actions[action.index]
      })
      const sample: TfSample = { policy: POLICY_NAME, features: f, action: action.index, instruction: instruction.index, observation: atIntersection ? 1 : 0 }
      return {
        text,
        logProb: action.logProb + config.thought_prob_coef * (instruction.logProb + obsLogProb),
        value: v[i],
        sample
      }
    })
  }

  const learner: Learner = {
    parameters: () => values,
    commit: () => {
      for (const spec of specs) variables[spec.name].assign(tf.tensor(values.get(spec.name)!, [...spec.shape]))
    },
    teacher: (input, text) => {
      const features = readFeatures(input, shape)
      const parsed = parseOutput(text)
      if (typeof parsed.action !== "string" || parsed.action === NOT_FOUND) return undefined
      const action = features.actions.indexOf(parsed.action)
      if (action < 0) return undefined
      const observation = typeof parsed.observation === "string" && parsed.observation.includes("intersection") ? 1 : 0
      const sample: TfSample = {
        policy: POLICY_NAME,
        features,
        action,
        instruction: typeof parsed.instruction === "string" ? features.sentences.indexOf(parsed.instruction) : -1,
        observation
      }
      return sample
    },
    gradients: (samples, options, coefficients) =>
      Effect.try({
        try: () => {
          const batch = samples as ReadonlyArray<TfSample>
          if (batch.some((s) => s.policy !== POLICY_NAME)) throw new Error(`samples from another policy cannot train ${POLICY_NAME}`)
          const B = batch.length
          const C = shape.maxActions
          const S = shape.maxSentences
          const oneHot = (n: number, pick: (s: TfSample) => number) => {
            const out = new Float32Array(B * n)
            batch.forEach((s, i) => {
              const k = pick(s)
              if (k >= 0) out[i * n + k] = 1
            })
            return out
          }
          let evaluation: Evaluation | undefined
          const { grads, value } = tf.variableGrads(() => {
            const x = batchTensors(tf, config.model, batch.map((s) => s.features))
            const out = forward(tf, config.model, variables, x)
            const t = Math.max(options.temperature, 1e-6)
            const logP = tf.logSoftmax(tf.div(out.actionLogits, t))
            const lpAction = tf.sum(tf.mul(logP, tf.tensor(oneHot(C, (s) => s.action), [B, C])), 1)
            const lpInstruction = tf.sum(tf.mul(tf.logSoftmax(tf.div(out.sentenceLogits, t)), tf.tensor(oneHot(S, (s) => s.instruction), [B, S])), 1)
            const sign = tf.tensor(Float32Array.from(batch, (s) => (s.observation === 1 ? 1 : -1)), [B])
            // log σ(z) = −softplus(−z); tf.logSigmoid's own gradient reads a disposed tensor on wasm
            const lpObservation = tf.neg(tf.softplus(tf.neg(tf.mul(sign, tf.div(out.observationLogit, t)))))
            const logProb = tf.add(lpAction, tf.mul(options.thoughtWeight, tf.add(lpInstruction, lpObservation)))
            const entropy = tf.neg(tf.sum(tf.mul(tf.exp(logP), logP), 1))
            evaluation = {
              logProbs: Array.from(logProb.dataSync()),
              values: Array.from(out.value.dataSync()),
              entropies: Array.from(entropy.dataSync())
            }
            const c = coefficients(evaluation)
            const surrogate = tf.add(
              tf.add(tf.sum(tf.mul(logProb, tf.tensor(c.logProb as number[], [B]))), tf.sum(tf.mul(out.value, tf.tensor(c.value as number[], [B])))),
              tf.sum(tf.mul(entropy, tf.tensor(c.entropy as number[], [B])))
            )
            return surrogate as import("@tensorflow/tfjs-core").Scalar
          }, Object.values(variables))
          const gradients = new Map<string, Float32Array>()
          for (const spec of specs) {
            const g = grads[variables[spec.name].name]
            gradients.set(spec.name, g === undefined ? new Float32Array(values.get(spec.name)!.length) : Float32Array.from(g.dataSync()))
          }
          tf.dispose([...Object.values(grads), value])
          return { gradients, evaluation: evaluation! }
        },
        catch: (e) => (e instanceof PolicyError ? e : new PolicyError({ message: `gradients: ${(e as Error).stack}` }))
      })
  }

  return {
    name: POLICY_NAME,
    config,
    act: (inputs, options) =>
      Effect.try({ try: () => act(inputs, options), catch: (e) => new PolicyError({ message: `act: ${(e as Error).message}` }) }),
    learner
  }
}

export const layer = (config: TfPolicyConfig, initial?: Map<string, Float32Array>) =>
  Layer.effect(
    Policy,
    Effect.gen(function* () {
      const { tf } = yield* Backend
      const rng = yield* Random
      return yield* Effect.try({ try: () => make(tf, config, rng, initial), catch: (e) => (e instanceof PolicyError ? e : new PolicyError({ message: String(e) })) })
    })
  )

export type { Tensor }
