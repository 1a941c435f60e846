import type { Rng } from "../../../core/random.ts"
import type { Tf } from "./backend.ts"
import type { FeatureShape, Features } from "./features.ts"

type Tensor = import("@tensorflow/tfjs-core").Tensor

/**
 * A small vision-language policy. Words are embedded by one shared table (instruction
 * sentences, listed actions and context alike, so an action is scored by what its words mean);
 * a query built from the history and the current observation attends over the instruction
 * sentences (the "current instruction"); 8×8 image patches are embedded and pooled; a joint
 * hidden state scores each listed action, predicts whether the agent is at an intersection (the
 * "current observation") and, through a separate head, the value.
 */
export interface ModelConfig {
  readonly shape: FeatureShape
  readonly embedding: number
  readonly hidden: number
  readonly patch: number
  readonly patchFeatures: number
}

export const DEFAULT_MODEL: Omit<ModelConfig, "shape"> = { embedding: 64, hidden: 128, patch: 8, patchFeatures: 32 }

export interface ParameterSpec {
  readonly name: string
  readonly shape: ReadonlyArray<number>
  /** Standard deviation of the initial normal draw; 0 for zeros. */
  readonly std: number
}

export const parameterSpecs = (c: ModelConfig): ParameterSpec[] => {
  const { vocab, maxSentences, maxCount } = c.shape
  const D = c.embedding
  const H = c.hidden
  const patchIn = c.patch * c.patch * 3
  const ctxIn = 4 * D + 4 * (maxCount + 1)
  const he = (fanIn: number) => Math.sqrt(2 / fanIn)
  return [
    { name: "word_embedding", shape: [vocab, D], std: 0.1 },
    { name: "word_bias", shape: [D], std: 0 },
    { name: "sentence_position", shape: [maxSentences, D], std: 0.1 },
    { name: "context_w1", shape: [ctxIn, H], std: he(ctxIn) },
    { name: "context_b1", shape: [H], std: 0 },
    { name: "context_w2", shape: [H, D], std: he(H) },
    { name: "context_b2", shape: [D], std: 0 },
    { name: "attention_keys", shape: [D, D], std: he(D) },
    { name: "patch_w", shape: [patchIn, c.patchFeatures], std: he(patchIn) },
    { name: "patch_b", shape: [c.patchFeatures], std: 0 },
    { name: "image_w", shape: [2 * c.patchFeatures, D], std: he(2 * c.patchFeatures) },
    { name: "image_b", shape: [D], std: 0 },
    { name: "joint_w", shape: [4 * D, H], std: he(4 * D) },
    { name: "joint_b", shape: [H], std: 0 },
    { name: "action_query", shape: [H, D], std: he(H) },
    { name: "action_prior", shape: [D, 1], std: 0.05 },
    { name: "observation_w", shape: [H, 1], std: 0.05 },
    { name: "observation_b", shape: [1], std: 0 },
    { name: "value_w1", shape: [H, H], std: he(H) },
    { name: "value_b1", shape: [H], std: 0 },
    { name: "value_w2", shape: [H, 1], std: 0.01 },
    { name: "value_b2", shape: [1], std: 0 }
  ]
}

/** Initial values from the run's generator (Box–Muller), so a seed fixes the initial model. */
export const initialParameters = (specs: ReadonlyArray<ParameterSpec>, rng: Rng): Map<string, Float32Array> => {
  const out = new Map<string, Float32Array>()
  for (const spec of specs) {
    const n = spec.shape.reduce((a, b) => a * b, 1)
    const values = new Float32Array(n)
    if (spec.std > 0) {
      for (let i = 0; i < n; i += 2) {
        const u = Math.max(rng.random(), 1e-12)
        const v = rng.random()
        const r = Math.sqrt(-2 * Math.log(u)) * spec.std
        values[i] = r * Math.cos(2 * Math.PI * v)
        if (i + 1 < n) values[i + 1] = r * Math.sin(2 * Math.PI * v)
      }
    }
    out.set(spec.name, values)
  }
  return out
}

export interface BatchTensors {
  readonly sentenceWords: Tensor
  readonly sentenceMask: Tensor
  readonly actionWords: Tensor
  readonly actionMask: Tensor
  readonly contextWords: Tensor
  readonly counts: Tensor
  readonly image: Tensor
}

export const batchTensors = (tf: Tf, c: ModelConfig, batch: ReadonlyArray<Features>): BatchTensors => {
  const { vocab, maxSentences: S, maxActions: C, maxCount, imageSide } = c.shape
  const B = batch.length
  const cat = (pick: (f: Features) => Uint8Array, size: number) => {
    const out = new Float32Array(B * size)
    batch.forEach((f, i) => {
      const src = pick(f)
      for (let k = 0; k < size; k++) out[i * size + k] = src[k]
    })
    return out
  }
  const mask = (count: (f: Features) => number, size: number) => {
    const out = new Float32Array(B * size)
    batch.forEach((f, i) => out.fill(1, i * size, i * size + Math.min(size, count(f))))
    return out
  }
  const image = new Float32Array(B * imageSide * imageSide * 3)
  batch.forEach((f, i) => {
    for (let k = 0; k < f.image.length; k++) image[i * f.image.length + k] = f.image[k] / 255 - 0.5
  })
  return {
    sentenceWords: tf.tensor(cat((f) => f.sentenceWords, S * vocab), [B, S, vocab]),
    sentenceMask: tf.tensor(mask((f) => f.sentences.length, S), [B, S]),
    actionWords: tf.tensor(cat((f) => f.actionWords, C * vocab), [B, C, vocab]),
    actionMask: tf.tensor(mask((f) => f.actions.length, C), [B, C]),
    contextWords: tf.tensor(cat((f) => f.contextWords, 4 * vocab), [B, 4, vocab]),
    counts: tf.tensor(cat((f) => f.counts, 4 * (maxCount + 1)), [B, 4 * (maxCount + 1)]),
    image: tf.tensor(image, [B, imageSide, imageSide, 3])
  }
}

export interface ModelOutputs {
  /** [B, C] action logits, −1e9 where no action is listed. */
  readonly actionLogits: Tensor
  /** [B, S] attention logits over the sentences. */
  readonly sentenceLogits: Tensor
  /** [B] logit of "at an intersection". */
  readonly observationLogit: Tensor
  /** [B] */
  readonly value: Tensor
}

const NEG = -1e9

export const forward = (tf: Tf, c: ModelConfig, p: Record<string, Tensor>, x: BatchTensors): ModelOutputs => {
  const [B, S, V] = x.sentenceWords.shape as [number, number, number]
  const C = x.actionWords.shape[1] as number
  const D = c.embedding
  const embed = (words: Tensor, n: number) => tf.relu(tf.add(tf.matMul(tf.reshape(words, [B * n, V]), p.word_embedding), p.word_bias))
  const sentences = tf.add(tf.reshape(embed(x.sentenceWords, S), [B, S, D]), p.sentence_position)
  const context = tf.reshape(embed(x.contextWords, 4), [B, 4 * D])
  const h1 = tf.relu(tf.add(tf.matMul(tf.concat([context, x.counts], 1), p.context_w1), p.context_b1))
  const query = tf.relu(tf.add(tf.matMul(h1, p.context_w2), p.context_b2))
  const keys = tf.reshape(tf.matMul(tf.reshape(sentences, [B * S, D]), p.attention_keys), [B, S, D])
  const sentenceLogits = tf.add(tf.div(tf.sum(tf.mul(keys, tf.expandDims(query, 1)), 2), Math.sqrt(D)), tf.mul(tf.sub(1, x.sentenceMask), NEG))
  const attention = tf.softmax(sentenceLogits)
  const attended = tf.sum(tf.mul(sentences, tf.expandDims(attention, 2)), 1)

  const side = c.shape.imageSide
  const n = Math.floor(side / c.patch)
  const patches = tf.reshape(
    tf.transpose(tf.reshape(tf.slice(x.image, [0, 0, 0, 0], [B, n * c.patch, n * c.patch, 3]), [B, n, c.patch, n, c.patch, 3]), [0, 1, 3, 2, 4, 5]),
    [B * n * n, c.patch * c.patch * 3]
  )
  const patchFeatures = tf.reshape(tf.relu(tf.add(tf.matMul(patches, p.patch_w), p.patch_b)), [B, n * n, c.patchFeatures])
  const pooled = tf.concat([tf.mean(patchFeatures, 1), tf.max(patchFeatures, 1)], 1)
  const image = tf.relu(tf.add(tf.matMul(pooled, p.image_w), p.image_b))

  const current = tf.reshape(tf.slice(context, [0, 0], [B, D]), [B, D])
  const joint = tf.relu(tf.add(tf.matMul(tf.concat([attended, query, image, current], 1), p.joint_w), p.joint_b))

  const actions = tf.reshape(embed(x.actionWords, C), [B, C, D])
  const actionQuery = tf.matMul(joint, p.action_query)
  const prior = tf.reshape(tf.matMul(tf.reshape(actions, [B * C, D]), p.action_prior), [B, C])
  const actionLogits = tf.add(tf.add(tf.sum(tf.mul(actions, tf.expandDims(actionQuery, 1)), 2), prior), tf.mul(tf.sub(1, x.actionMask), NEG))
  const observationLogit = tf.reshape(tf.add(tf.matMul(joint, p.observation_w), p.observation_b), [B])
  const value = tf.reshape(tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(joint, p.value_w1), p.value_b1)), p.value_w2), p.value_b2), [B])
  return { actionLogits, sentenceLogits, observationLogit, value }
}
