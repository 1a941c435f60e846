/**
 * The generative policy's network: a small encoder–decoder transformer in tfjs. The encoder reads
 * the prompt's tokens (with learned positions) and the grid image's patches; the decoder writes
 * the answer token by token, attending causally to what it wrote and to the encoder's output
 * (pre-norm blocks, GELU-free ReLU MLPs, tied input/output token embeddings). A value head reads
 * the decoder's state at the answer's first position (the reference's "last input token").
 */
import type { Rng } from "../../../core/random.ts"
import type { Tf } from "../tfjs/backend.ts"
import { initialParameters as normalDraws } from "../tfjs/model.ts"

type Tensor = import("@tensorflow/tfjs-core").Tensor

export interface NetworkShape {
  readonly vocab: number
  readonly width: number
  readonly heads: number
  readonly encoderLayers: number
  readonly decoderLayers: number
  /** Prompt tokens kept (the first and last halves of a longer prompt). */
  readonly promptTokens: number
  /** Answer tokens written at most, the end token included. */
  readonly answerTokens: number
  /** The grid image, area-averaged to side × side and cut into patch × patch squares. */
  readonly imageSide: number
  readonly patch: number
  /**
   * A copy head: attention over the prompt's tokens raises the logits of the tokens it
   * attends to and of their bare forms (a word without the space or newline before it).
   */
  readonly copy: boolean
}

export interface ParameterSpec {
  readonly name: string
  readonly shape: ReadonlyArray<number>
  /** Standard deviation of the initial normal draw (0: constant). */
  readonly std: number
  /** The constant of a parameter not drawn (default 0). */
  readonly fill?: number
}

/** Initial values from the run's generator: normal draws, and the constants (norm gains 1). */
export const initialParameters = (specs: ReadonlyArray<ParameterSpec>, rng: Rng): Map<string, Float32Array> => {
  const out = normalDraws(specs, rng)
  for (const spec of specs) if (spec.fill !== undefined) out.get(spec.name)!.fill(spec.fill)
  return out
}

export const patchCount = (s: NetworkShape): number => (s.imageSide / s.patch) ** 2
export const patchSize = (s: NetworkShape): number => s.patch * s.patch * 3

const block = (prefix: string, d: number, cross: boolean): ParameterSpec[] => {
  const w = Math.sqrt(1 / d)
  const attention = (name: string): ParameterSpec[] => [
    { name: `${prefix}.${name}.q`, shape: [d, d], std: w },
    { name: `${prefix}.${name}.k`, shape: [d, d], std: w },
    { name: `${prefix}.${name}.v`, shape: [d, d], std: w },
    { name: `${prefix}.${name}.o`, shape: [d, d], std: w * 0.5 }
  ]
  const norm = (name: string): ParameterSpec[] => [
    { name: `${prefix}.${name}.gain`, shape: [d], std: 0, fill: 1 },
    { name: `${prefix}.${name}.bias`, shape: [d], std: 0 }
  ]
  return [
    ...norm("norm1"),
    ...attention("self"),
    ...(cross ? [...norm("norm_cross"), ...attention("cross")] : []),
    ...norm("norm2"),
    { name: `${prefix}.mlp.w1`, shape: [d, 4 * d], std: Math.sqrt(2 / d) },
    { name: `${prefix}.mlp.b1`, shape: [4 * d], std: 0 },
    { name: `${prefix}.mlp.w2`, shape: [4 * d, d], std: Math.sqrt(1 / (4 * d)) * 0.5 },
    { name: `${prefix}.mlp.b2`, shape: [d], std: 0 }
  ]
}

export const parameterSpecs = (s: NetworkShape): ParameterSpec[] => {
  const d = s.width
  return [
    { name: "token_embedding", shape: [s.vocab, d], std: 0.05 },
    { name: "prompt_position", shape: [s.promptTokens, d], std: 0.02 },
    { name: "answer_position", shape: [s.answerTokens, d], std: 0.02 },
    { name: "patch_w", shape: [patchSize(s), d], std: Math.sqrt(1 / patchSize(s)) },
    { name: "patch_b", shape: [d], std: 0 },
    { name: "patch_position", shape: [patchCount(s), d], std: 0.02 },
    ...Array.from({ length: s.encoderLayers }, (_, l) => block(`encoder${l}`, d, false)).flat(),
    ...Array.from({ length: s.decoderLayers }, (_, l) => block(`decoder${l}`, d, true)).flat(),
    { name: "final_norm.gain", shape: [d], std: 0, fill: 1 },
    { name: "final_norm.bias", shape: [d], std: 0 },
    { name: "output_bias", shape: [s.vocab], std: 0 },
    ...(s.copy
      ? [
        { name: "copy_q", shape: [d, d], std: Math.sqrt(1 / d) },
        { name: "copy_k", shape: [d, d], std: Math.sqrt(1 / d) },
        // the copy's strength
        { name: "copy_gate_w", shape: [d, 1], std: 0.01 },
        { name: "copy_gate_b", shape: [1], std: 0 }
      ]
      : []),
    { name: "value_w1", shape: [d, d], std: Math.sqrt(2 / d) },
    { name: "value_b1", shape: [d], std: 0 },
    { name: "value_w2", shape: [d, 1], std: 0.01 },
    { name: "value_b2", shape: [1], std: 0 }
  ]
}

const NEG = -1e9

/** What the copy head reads of the prompt: its keys [B, P, d], its padding mask [B, 1, P] and its token ids [B, P]. */
export interface CopySource {
  readonly keys: Tensor
  readonly mask: Tensor
  readonly prompt: Tensor
}

/**
 * The copy head's share added to one decoding step's logits in place ([B, vocab]), from its
 * attention [B, P] over the prompt's ids [B, P] and its strength [B]: what `decode` adds with a
 * product over one-hot rows, here by index (a step needs no gradient).
 */
export const addCopy = (
  logits: Float32Array,
  copied: { readonly attend: Float32Array; readonly strength: Float32Array },
  ids: Int32Array,
  bare: Int32Array,
  vocab: number
): void => {
  const B = copied.strength.length
  const P = ids.length / B
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < P; i++) {
      const w = copied.attend[b * P + i]! * copied.strength[b]!
      if (w === 0) continue
      const id = ids[b * P + i]!
      logits[b * vocab + id] += w
      if (bare[id] !== id) logits[b * vocab + bare[id]!] += w
    }
  }
}

/**
 * The network's forward pass, over tfjs tensors named as parameterSpecs names them. `bare` maps
 * each token id to the id of its bare form (itself when it has none); the copy head needs it.
 */
export const network = (tf: Tf, s: NetworkShape, p: Readonly<Record<string, Tensor>>, bare?: Int32Array) => {
  const d = s.width
  const H = s.heads
  const dh = d / H
  const norm = (x: Tensor, name: string) => {
    const { mean, variance } = tf.moments(x, -1, true)
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), p[`${name}.gain`]!), p[`${name}.bias`]!)
  }
  /** x [B, T, d] @ w [d, e] → [B, T, e]. */
  const dense = (x: Tensor, w: Tensor, b?: Tensor) => {
    const [B, T] = x.shape as [number, number, number]
    const y = tf.reshape(tf.matMul(tf.reshape(x, [B * T, x.shape[2]!]), w), [B, T, w.shape[1]!])
    return b === undefined ? y : tf.add(y, b)
  }
  const split = (x: Tensor) => {
    const [B, T] = x.shape as [number, number, number]
    return tf.reshape(tf.transpose(tf.reshape(x, [B, T, H, dh]), [0, 2, 1, 3]), [B * H, T, dh])
  }
  /** Multi-head attention of x's queries over y's keys; `mask` [B, 1 or Tq, Tk] additive. */
  const attention = (x: Tensor, y: Tensor, name: string, mask: Tensor) => {
    const [B, Tq] = x.shape as [number, number, number]
    const Tk = y.shape[1]!
    const q = split(dense(x, p[`${name}.q`]!))
    const k = split(dense(y, p[`${name}.k`]!))
    const v = split(dense(y, p[`${name}.v`]!))
    const scores = tf.reshape(tf.div(tf.matMul(q, k, false, true), Math.sqrt(dh)), [B, H, Tq, Tk])
    const weights = tf.softmax(tf.add(scores, tf.expandDims(mask, 1)))
    const mixed = tf.matMul(tf.reshape(weights, [B * H, Tq, Tk]), v)
    const joined = tf.reshape(tf.transpose(tf.reshape(mixed, [B, H, Tq, dh]), [0, 2, 1, 3]), [B, Tq, d])
    return dense(joined, p[`${name}.o`]!)
  }
  const mlp = (x: Tensor, name: string) => dense(tf.relu(dense(x, p[`${name}.mlp.w1`]!, p[`${name}.mlp.b1`])), p[`${name}.mlp.w2`]!, p[`${name}.mlp.b2`])

  /**
   * The encoder's output for prompts [B, P] (PAD-padded, PAD = 0) and patches [B, N, patchSize]:
   * [B, P + N, d], and the additive mask of its padding [B, 1, P + N]. `embedded`: the prompt's
   * token embeddings when the caller looked them up (a gather's gradient has no wasm kernel).
   */
  const encode = (prompt: Tensor, patches: Tensor, embedded?: Tensor) => {
    const [B, P] = prompt.shape as [number, number]
    const tokens = tf.add(embedded ?? tf.gather(p["token_embedding"]!, prompt), tf.slice(p["prompt_position"]!, [0, 0], [P, d]))
    const image = tf.add(dense(patches, p["patch_w"]!, p["patch_b"]), p["patch_position"]!)
    let x = tf.concat([tokens, image], 1)
    const padding = tf.mul(tf.cast(tf.equal(prompt, 0), "float32"), NEG)
    const mask = tf.expandDims(tf.concat([padding, tf.zeros([B, patchCount(s)])], 1), 1)
    for (let l = 0; l < s.encoderLayers; l++) {
      const name = `encoder${l}`
      const h = norm(x, `${name}.norm1`)
      x = tf.add(x, attention(h, h, `${name}.self`, mask))
      x = tf.add(x, mlp(norm(x, `${name}.norm2`), name))
    }
    const copy: CopySource | undefined = s.copy
      ? {
        keys: dense(tf.slice(x, [0, 0, 0], [B, P, d]), p["copy_k"]!),
        mask: tf.expandDims(padding, 1),
        prompt
      }
      : undefined
    return { memory: x, mask, copy }
  }
  const bareIds = (): Int32Array => {
    if (bare === undefined || bare.length !== s.vocab) throw new RangeError(`the copy head needs the bare form of each of the ${s.vocab} tokens`)
    return bare
  }

  /** The copy head's attention over the prompt's positions [B, T, P] and its strength [B, T, 1], from the final states [B, T, d]. */
  const copying = (out: Tensor, copy: Pick<CopySource, "keys" | "mask">) => {
    const scores = tf.div(tf.matMul(dense(out, p["copy_q"]!), copy.keys, false, true), Math.sqrt(d))
    return { attend: tf.softmax(tf.add(scores, copy.mask)), strength: tf.softplus(dense(out, p["copy_gate_w"]!, p["copy_gate_b"])) }
  }
  /**
   * The output's logits [B, T, vocab] from the final states [B, T, d] and the vocabulary's
   * logits: with the copy head, each prompt position adds its attention weight, times a learnt
   * non-negative strength, to the logits of its token and of that token's bare form (the
   * vocabulary's logits tell the two apart: a bare word follows "(") — a copy bias on the
   * logits, so the vocabulary's logits keep their whole gradient.
   */
  const output = (out: Tensor, logits: Tensor, copy: CopySource | undefined) => {
    if (copy === undefined) return logits
    const { attend, strength } = copying(out, copy)
    const rows = tf.maximum(tf.oneHot(copy.prompt, s.vocab), tf.oneHot(tf.gather(tf.tensor(bareIds(), [s.vocab], "int32"), copy.prompt), s.vocab))
    return tf.add(logits, tf.mul(tf.matMul(attend, rows), strength))
  }
  /** The decoder over answer inputs [B, T] (BOS then the answer so far): logits [B, T, vocab] and the value [B]. */
  const decode = (memory: Tensor, mask: Tensor, inputs: Tensor, embedded?: Tensor, copy?: CopySource) => {
    const [B, T] = inputs.shape as [number, number]
    let x = tf.add(embedded ?? tf.gather(p["token_embedding"]!, inputs), tf.slice(p["answer_position"]!, [0, 0], [T, d]))
    const causal = tf.tensor(Float32Array.from({ length: T * T }, (_, k) => (k % T > Math.floor(k / T) ? NEG : 0)), [1, T, T])
    for (let l = 0; l < s.decoderLayers; l++) {
      const name = `decoder${l}`
      const h = norm(x, `${name}.norm1`)
      x = tf.add(x, attention(h, h, `${name}.self`, causal))
      x = tf.add(x, attention(norm(x, `${name}.norm_cross`), memory, `${name}.cross`, mask))
      x = tf.add(x, mlp(norm(x, `${name}.norm2`), name))
    }
    const out = norm(x, "final_norm")
    const logits = output(
      out,
      tf.add(tf.reshape(tf.matMul(tf.reshape(out, [B * T, d]), p["token_embedding"]!, false, true), [B, T, s.vocab]), p["output_bias"]!),
      copy
    )
    const first = tf.reshape(tf.slice(out, [0, 0, 0], [B, 1, d]), [B, d])
    const value = tf.reshape(tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(first, p["value_w1"]!), p["value_b1"]!)), p["value_w2"]!), p["value_b2"]!), [B])
    return { logits, value }
  }
  /** The cross-attention keys and values of the memory, per decoder block: computed once per answer. */
  const crossCache = (memory: Tensor) =>
    Array.from({ length: s.decoderLayers }, (_, l) => ({
      k: split(dense(memory, p[`decoder${l}.cross.k`]!)),
      v: split(dense(memory, p[`decoder${l}.cross.v`]!))
    }))

  /**
   * One decoding step with a key–value cache: the next token's inputs [B, 1] at position `t`, the
   * keys and values of the tokens before it (per block, [B·H, t, dh]; none at t = 0). Returns the
   * next-token logits [B, vocab], the value (meaningful at t = 0) and the caches grown by one;
   * with the copy head, the logits are the vocabulary's and `copied` its attention [B, P] and
   * strength [B], for addCopy. The same numbers as `decode` over the whole prefix, at one
   * position's cost.
   */
  const step = (
    tokens: Tensor,
    t: number,
    mask: Tensor,
    cross: ReadonlyArray<{ readonly k: Tensor; readonly v: Tensor }>,
    past: ReadonlyArray<{ readonly k: Tensor; readonly v: Tensor }> | undefined,
    copy?: Pick<CopySource, "keys" | "mask">
  ) => {
    const B = tokens.shape[0]!
    const M = mask.shape[2]!
    const headsMask = tf.reshape(tf.tile(tf.expandDims(mask, 1), [1, H, 1, 1]), [B * H, 1, M])
    let x = tf.add(tf.gather(p["token_embedding"]!, tokens), tf.slice(p["answer_position"]!, [t, 0], [1, d]))
    const grown: Array<{ k: Tensor; v: Tensor }> = []
    const attend = (q: Tensor, k: Tensor, v: Tensor, extra?: Tensor) => {
      const scores = tf.div(tf.matMul(q, k, false, true), Math.sqrt(dh))
      const mixed = tf.matMul(tf.softmax(extra === undefined ? scores : tf.add(scores, extra)), v)
      return tf.reshape(tf.transpose(tf.reshape(mixed, [B, H, 1, dh]), [0, 2, 1, 3]), [B, 1, d])
    }
    for (let l = 0; l < s.decoderLayers; l++) {
      const name = `decoder${l}`
      const h = norm(x, `${name}.norm1`)
      const k = past === undefined ? split(dense(h, p[`${name}.self.k`]!)) : tf.concat([past[l]!.k, split(dense(h, p[`${name}.self.k`]!))], 1)
      const v = past === undefined ? split(dense(h, p[`${name}.self.v`]!)) : tf.concat([past[l]!.v, split(dense(h, p[`${name}.self.v`]!))], 1)
      grown.push({ k, v })
      x = tf.add(x, dense(attend(split(dense(h, p[`${name}.self.q`]!)), k, v), p[`${name}.self.o`]!))
      const c = norm(x, `${name}.norm_cross`)
      x = tf.add(x, dense(attend(split(dense(c, p[`${name}.cross.q`]!)), cross[l]!.k, cross[l]!.v, headsMask), p[`${name}.cross.o`]!))
      x = tf.add(x, mlp(norm(x, `${name}.norm2`), name))
    }
    const final = norm(x, "final_norm")
    const out = tf.reshape(final, [B, d])
    const logits = tf.add(tf.matMul(out, p["token_embedding"]!, false, true), p["output_bias"]!)
    const value = tf.reshape(tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(out, p["value_w1"]!), p["value_b1"]!)), p["value_w2"]!), p["value_b2"]!), [B])
    const c = copy === undefined ? undefined : copying(final, copy)
    const copied = c === undefined ? undefined : { attend: tf.reshape(c.attend, [B, -1]), strength: tf.reshape(c.strength, [B]) }
    return { logits, value, cache: grown, copied }
  }
  return { encode, decode, crossCache, step }
}
