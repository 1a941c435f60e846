import type { Rng } from "../../../core/random.ts"
import type { Tf } from "./backend.ts"
import { CONTEXT_SLOTS, type Features, type FeatureShape, slotCount } from "./features.ts"

type Tensor = import("@tensorflow/tfjs-core").Tensor

/**
 * A small vision-language policy that writes the reference's three-part answer by choosing
 * each part from what the prompt offers. One word-embedding table embeds every piece of text as
 * a bag of words — instruction sentences, listed actions, observation descriptions, context — so
 * an action or a description is scored by what its words mean and one model serves any action
 * space. A query built from the context attends over the instruction sentences (the
 * "current instruction"); 8×8 image patches are embedded and pooled; a joint hidden state
 * scores the listed actions and the observation descriptions and, through a separate head,
 * gives the value.
 *
 * Bags of words are summed in plain JS (from ids) rather than by one-hot matrix products or
 * tfjs gathers, which cost the wasm backend orders of magnitude more (docs/measurements.md).
 */
export interface ModelConfig {
  readonly shape: FeatureShape
  readonly embedding: number
  readonly hidden: number
  readonly patch: number
  readonly patchFeatures: number
}

export const DEFAULT_MODEL: Omit<ModelConfig, "shape"> = { embedding: 96, hidden: 192, patch: 8, patchFeatures: 48 }

export interface ParameterSpec {
  readonly name: string
  readonly shape: ReadonlyArray<number>
  /** Standard deviation of the initial normal draw; 0 for zeros. */
  readonly std: number
}

/** The word table lives outside tfjs (see above); every other parameter is a tfjs variable. */
export const WORD_TABLE = "word_embedding"

export const parameterSpecs = (c: ModelConfig): ParameterSpec[] => {
  const { vocab, maxSentences, maxCount } = c.shape
  const D = c.embedding
  const H = c.hidden
  const patchIn = c.patch * c.patch * 3
  const ctxIn = CONTEXT_SLOTS * D + 4 * (maxCount + 1)
  const he = (fanIn: number) => Math.sqrt(2 / fanIn)
  return [
    { name: WORD_TABLE, shape: [vocab, D], std: 0.3 },
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
    { name: "observation_query", shape: [H, D], std: he(H) },
    { name: "observation_prior", shape: [D, 1], std: 0.05 },
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

/** Visits every word of every slot: the word's row in the table, its bag's offset, and the bag's 1/√count. */
const eachWord = (batch: ReadonlyArray<Features>, D: number, slots: number, visit: (row: number, bag: number, scale: number) => void): void =>
  batch.forEach((f, b) => {
    for (let k = 0; k < slots; k++) {
      const start = f.offsets[k]
      const end = f.offsets[k + 1]
      const scale = 1 / Math.sqrt(end - start)
      for (let i = start; i < end; i++) visit(f.words[i] * D, (b * slots + k) * D, scale)
    }
  })

/** Each slot's words summed from the table and scaled by 1/√count: [B × slots × D]. */
export const bagsOfWords = (batch: ReadonlyArray<Features>, table: Float32Array, D: number, slots: number): Float32Array => {
  const out = new Float32Array(batch.length * slots * D)
  eachWord(batch, D, slots, (row, bag, scale) => {
    for (let d = 0; d < D; d++) out[bag + d] += table[row + d] * scale
  })
  return out
}

/**
 * The same bags as flat lists, for computing them with tensor ops (gather, segment sum) on a GPU:
 * each word's row in the table, its bag (b × slots + k) and its bag's 1/√count.
 */
export const wordLists = (batch: ReadonlyArray<Features>, slots: number): { rows: Int32Array; bags: Int32Array; scales: Float32Array } => {
  const n = batch.reduce((sum, f) => sum + f.offsets[slots] - f.offsets[0], 0)
  const rows = new Int32Array(n)
  const bags = new Int32Array(n)
  const scales = new Float32Array(n)
  let i = 0
  eachWord(batch, 1, slots, (row, bag, scale) => {
    rows[i] = row
    bags[i] = bag
    scales[i++] = scale
  })
  return { rows, bags, scales }
}

/** The gradient of the word table from the gradient of the bags (the transpose of `bagsOfWords`). */
export const tableGradient = (batch: ReadonlyArray<Features>, dBags: Float32Array, D: number, slots: number, vocab: number): Float32Array => {
  const out = new Float32Array(vocab * D)
  eachWord(batch, D, slots, (row, bag, scale) => {
    for (let d = 0; d < D; d++) out[row + d] += dBags[bag + d] * scale
  })
  return out
}

export interface BatchInputs {
  /** [B, slots, D] bags of words (a variable while gradients are taken). */
  readonly bags: Tensor
  readonly sentenceMask: Tensor
  readonly actionMask: Tensor
  readonly observationMask: Tensor
  readonly counts: Tensor
  readonly image: Tensor
}

export const batchInputs = (tf: Tf, c: ModelConfig, batch: ReadonlyArray<Features>, bags: Tensor): BatchInputs => {
  const { maxSentences: S, maxActions: C, maxObservations: O, maxCount, imageSide } = c.shape
  const B = batch.length
  const mask = (count: (f: Features) => number, size: number) => {
    const out = new Float32Array(B * size)
    batch.forEach((f, i) => out.fill(1, i * size, i * size + Math.min(size, count(f))))
    return tf.tensor(out, [B, size])
  }
  const counts = new Float32Array(B * 4 * (maxCount + 1))
  batch.forEach((f, i) => counts.set(f.counts, i * f.counts.length))
  const image = new Float32Array(B * imageSide * imageSide * 3)
  batch.forEach((f, i) => {
    for (let k = 0; k < f.image.length; k++) image[i * f.image.length + k] = f.image[k] / 255 - 0.5
  })
  return {
    bags,
    sentenceMask: mask((f) => f.sentences.length, S),
    actionMask: mask((f) => f.actions.length, C),
    observationMask: mask((f) => f.observations.length, O),
    counts: tf.tensor(counts, [B, 4 * (maxCount + 1)]),
    image: tf.tensor(image, [B, imageSide, imageSide, 3])
  }
}

export interface ModelOutputs {
  /** [B, C] action logits, −1e9 where no action is listed. */
  readonly actionLogits: Tensor
  /** [B, S] attention logits over the sentences: the "current instruction". */
  readonly sentenceLogits: Tensor
  /** [B, O] logits of the observation descriptions. */
  readonly observationLogits: Tensor
  /** [B] */
  readonly value: Tensor
}

const NEG = -1e9

const fastMatMuls = new WeakMap<Tf, (a: Tensor, b: Tensor) => Tensor>()

/**
 * A matrix product whose gradient uses explicit transposes: tfjs's own gradient calls matMul with
 * transposeA / transposeB, which the wasm backend runs far slower than a plain product (docs/measurements.md).
 */
export const matMul = (tf: Tf): (a: Tensor, b: Tensor) => Tensor => {
  let op = fastMatMuls.get(tf)
  if (op === undefined) {
    type T2 = import("@tensorflow/tfjs-core").Tensor2D
    type Save = import("@tensorflow/tfjs-core").GradSaveFunc
    const custom = tf.customGrad(
      ((a: T2, b: T2, save: Save) => {
        save([a, b])
        return {
          value: tf.matMul(a, b),
          gradFunc: (dy: T2, saved: Tensor[]) => [tf.matMul(dy, tf.transpose(saved[1] as T2)), tf.matMul(tf.transpose(saved[0] as T2), dy)]
        }
      }) as unknown as Parameters<Tf["customGrad"]>[0]
    ) as unknown as (a: Tensor, b: Tensor) => Tensor
    op = custom
    fastMatMuls.set(tf, op)
  }
  return op
}

export const forward = (tf: Tf, c: ModelConfig, p: Record<string, Tensor>, x: BatchInputs): ModelOutputs => {
  const mm = matMul(tf)
  const { maxSentences: S, maxActions: C, maxObservations: O } = c.shape
  const B = x.bags.shape[0] as number
  const D = c.embedding
  const slots = slotCount(c.shape)
  const words = tf.relu(tf.add(x.bags, p.word_bias))
  const part = (start: number, n: number) => tf.slice(words, [0, start, 0], [B, n, D])
  const sentences = tf.add(part(0, S), p.sentence_position)
  const actions = part(S, C)
  const observations = part(S + C, O)
  const context = tf.reshape(part(slots - CONTEXT_SLOTS, CONTEXT_SLOTS), [B, CONTEXT_SLOTS * D])
  const h1 = tf.relu(tf.add(mm(tf.concat([context, x.counts], 1), p.context_w1), p.context_b1))
  const query = tf.relu(tf.add(mm(h1, p.context_w2), p.context_b2))
  // (sentence · K) · query, computed as sentence · (K · queryᵀ)ᵀ: one small product instead of one per sentence
  const keyedQuery = mm(query, tf.transpose(p.attention_keys))
  const sentenceLogits = tf.add(tf.div(tf.sum(tf.mul(sentences, tf.expandDims(keyedQuery, 1)), 2), Math.sqrt(D)), tf.mul(tf.sub(1, x.sentenceMask), NEG))
  const attended = tf.sum(tf.mul(sentences, tf.expandDims(tf.softmax(sentenceLogits), 2)), 1)

  const side = c.shape.imageSide
  const n = Math.floor(side / c.patch)
  const patches = tf.reshape(
    tf.transpose(tf.reshape(tf.slice(x.image, [0, 0, 0, 0], [B, n * c.patch, n * c.patch, 3]), [B, n, c.patch, n, c.patch, 3]), [0, 1, 3, 2, 4, 5]),
    [B * n * n, c.patch * c.patch * 3]
  )
  const patchFeatures = tf.reshape(tf.relu(tf.add(mm(patches, p.patch_w), p.patch_b)), [B, n * n, c.patchFeatures])
  // mean and max over the patches: the max finds a small thing anywhere in the grid (the
  // destination's sign); without it the stop decision fails (6 training routes, 20 SFT epochs: 92%
  // per-step, 67% success with mean and mean square instead; 100% and 100% with the max)
  const pooled = tf.concat([tf.mean(patchFeatures, 1), tf.max(patchFeatures, 1)], 1)
  const image = tf.relu(tf.add(mm(pooled, p.image_w), p.image_b))

  const current = tf.reshape(tf.slice(context, [0, 0], [B, D]), [B, D])
  const joint = tf.relu(tf.add(mm(tf.concat([attended, query, image, current], 1), p.joint_w), p.joint_b))

  const score = (candidates: Tensor, count: number, queryW: Tensor, priorW: Tensor, candidateMask: Tensor) => {
    const q = mm(joint, queryW)
    const prior = tf.reshape(mm(tf.reshape(candidates, [B * count, D]), priorW), [B, count])
    return tf.add(tf.add(tf.sum(tf.mul(candidates, tf.expandDims(q, 1)), 2), prior), tf.mul(tf.sub(1, candidateMask), NEG))
  }
  const actionLogits = score(actions, C, p.action_query, p.action_prior, x.actionMask)
  const observationLogits = score(observations, O, p.observation_query, p.observation_prior, x.observationMask)
  const value = tf.reshape(tf.add(mm(tf.relu(tf.add(mm(joint, p.value_w1), p.value_b1)), p.value_w2), p.value_b2), [B])
  return { actionLogits, sentenceLogits, observationLogits, value }
}
