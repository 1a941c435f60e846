/// <reference types="@webgpu/types" />
/**
 * The generator's network (model.ts) on the engine of gpu-engine.ts: the same parameters, the same
 * arithmetic in single precision, as recorded dispatches — a training graph (teacher-forced
 * forward pass, per-answer log-probability, value and entropy, and the gradient of a weighted sum
 * of them) and a sampling graph (the encoder once, then one decoding step at a time over a
 * key–value cache, the copy head's share added on the GPU). Graphs are recorded per batch shape:
 * the batch rounded up to a multiple of 8, the prompt to 64 tokens, the answer to 16 (fewer
 * shapes, fewer graphs rebuilt).
 */
import { type Engine, makeEngine, rows, type T } from "./gpu-engine.ts"
import { makeRecorder } from "./gpu-layers.ts"
import { type NetworkShape, parameterSpecs, patchCount, patchSize } from "./model.ts"
import { PAD } from "./tokenizer.ts"

const NEG = -1e9

const roundUp = (x: number, k: number) => Math.ceil(x / k) * k

export interface Evaluated {
  readonly logProbs: Float32Array
  readonly values: Float32Array
  readonly entropies: Float32Array
}

export type GpuNetwork = ReturnType<typeof makeGpuNetwork>

export const makeGpuNetwork = (device: GPUDevice, s: NetworkShape, bare: Int32Array) => {
  const E: Engine = makeEngine(device)
  const d = s.width
  const V = s.vocab
  const N = patchCount(s)
  const S = patchSize(s)
  const specs = parameterSpecs(s)
  const offset = new Map<string, number>()
  const size = new Map<string, number>()
  let total = 0
  for (const spec of specs) {
    offset.set(spec.name, total)
    size.set(spec.name, spec.shape.reduce((a, b) => a * b, 1))
    total += size.get(spec.name)!
  }
  const shared = {}
  const { params, grads } = E.building(shared, () => ({ params: E.alloc(total), grads: E.alloc(total) }))
  const p = (name: string): T => {
    const at = offset.get(name)
    if (at === undefined) throw new Error(`no parameter ${name}`)
    const n = size.get(name)!
    return { buf: params.buf, off: at, n, g: { buf: grads.buf, off: at, n } }
  }

  const recorder = (train: boolean) => makeRecorder(E, s, p, train)

  interface TrainingGraph {
    readonly B: number
    readonly P: number
    readonly T: number
    readonly inputs: Record<string, T>
    readonly forward: ReadonlyArray<import("./gpu-engine.ts").Dispatch>
    readonly backward: ReadonlyArray<import("./gpu-engine.ts").Dispatch>
    readonly clear: ReadonlyArray<GPUBuffer>
    readonly evaluation: { logProb: T; value: T; entropy: T }
  }

  const buildTraining = (B: number, P: number, T: number): TrainingGraph => {
    const R = recorder(true)
    const M = P + N
    const inputs = {
      prompt: R.input(B * P),
      patches: R.input(B * N * S),
      mask: R.input(B * M),
      answer: R.input(B * T),
      positions: R.input(B * T * 3),
      coefficients: R.input(3 * B + 1),
      promptOffsets: R.input(V + 1),
      promptRows: R.input(B * P),
      answerOffsets: R.input(V + 1),
      answerRows: R.input(B * T),
      copyOffsets: R.input(B * (V + 1)),
      copyRows: R.input(2 * B * P),
      copyIds: R.input(2 * B * P)
    }
    const enc = R.encode(B, P, {
      prompt: inputs.prompt,
      patches: inputs.patches,
      mask: inputs.mask,
      promptLists: { offsets: inputs.promptOffsets, rows: inputs.promptRows }
    })
    const x = E.alloc(B * T * d)
    R.embed(inputs.answer, B, T, T, x, "answer_position", { offsets: inputs.answerOffsets, rows: inputs.answerRows })
    const { out, logits } = R.decode(x, B, T, {
      memory: enc.memory,
      M,
      mask: inputs.mask,
      self: (l, h, res) => R.attention(res, h, B, T, T, `decoder${l}.self`, { kv: h, causal: true })
    })
    if (enc.keys !== undefined) {
      R.copyHead(out, logits, enc.keys, B, T, P, M, inputs.mask, { offsets: inputs.copyOffsets, rows: inputs.copyRows, ids: inputs.copyIds })
    }
    const value = R.valueHead(out, B, T)
    // per position: log Z, entropy, the target's log-probability at the temperature (f0); per answer: their weighted sums
    const stats = E.alloc(B * T * 3)
    const logProb = E.alloc(B)
    const entropy = E.alloc(B)
    R.forward.push(
      E.ew(
        /* wgsl */ `
        let base = u.o0 + i * u.p0;
        let tau = x2[u.o2 + u.p1];
        var m = -3.4e38;
        for (var v = 0u; v < u.p0; v++) { m = max(m, x0[base + v] / tau); }
        var s = 0.0;
        for (var v = 0u; v < u.p0; v++) { s += exp(x0[base + v] / tau - m); }
        let logZ = m + log(s);
        var h = 0.0;
        for (var v = 0u; v < u.p0; v++) { let lp = x0[base + v] / tau - logZ; h -= exp(lp) * lp; }
        out[u.oo + i * 3u] = logZ;
        out[u.oo + i * 3u + 1u] = h;
        out[u.oo + i * 3u + 2u] = x0[base + u32(x1[u.o1 + i * 3u])] / tau - logZ;`,
        { out: stats, inputs: [logits, inputs.positions, inputs.coefficients], n: B * T, p: [V, 3 * B] }
      ),
      E.ew(
        /* wgsl */ `
        var s = 0.0;
        for (var t = 0u; t < u.p0; t++) { let r = i * u.p0 + t; s += x1[u.o1 + r * 3u + 1u] * x0[u.o0 + r * 3u + 2u]; }
        out[u.oo + i] = s;`,
        { out: logProb, inputs: [stats, inputs.positions], n: B, p: [T] }
      ),
      E.ew(
        /* wgsl */ `
        var s = 0.0;
        for (var t = 0u; t < u.p0; t++) { let r = i * u.p0 + t; s += x1[u.o1 + r * 3u + 2u] * x0[u.o0 + r * 3u + 1u]; }
        out[u.oo + i] = s;`,
        { out: entropy, inputs: [stats, inputs.positions], n: B, p: [T] }
      )
    )
    // backward: the value's gradient is its coefficient; the logits' from both sums
    const seed = [
      E.ew(`out[u.oo + i] = x0[u.o0 + u.p0 + i];`, { out: R.g(value), inputs: [inputs.coefficients], n: B, p: [B] }),
      E.ew(
        /* wgsl */ `
        let r = i / u.p0;
        let v = i % u.p0;
        let b = r / u.p1;
        let tau = x3[u.o3 + 3u * u.p2];
        let lp = x0[u.o0 + i] / tau - x1[u.o1 + r * 3u];
        let pv = exp(lp);
        var one = 0.0;
        if (v == u32(x2[u.o2 + r * 3u])) { one = 1.0; }
        let e = x3[u.o3 + b] * x2[u.o2 + r * 3u + 1u] * (one - pv) - x3[u.o3 + 2u * u.p2 + b] * x2[u.o2 + r * 3u + 2u] * pv * (lp + x1[u.o1 + r * 3u + 1u]);
        out[u.oo + i] += e / tau;`,
        { out: R.g(logits), inputs: [logits, stats, inputs.positions, inputs.coefficients], n: B * T * V, p: [V, T, B] }
      )
    ]
    const backward = [...seed, ...R.tape.reverse().flatMap((f) => f())]
    return {
      B,
      P,
      T,
      inputs,
      forward: R.forward,
      backward,
      clear: [grads.buf, ...R.gradients],
      evaluation: { logProb, value, entropy }
    }
  }

  interface SamplingGraph {
    readonly B: number
    readonly P: number
    readonly inputs: Record<string, T>
    readonly encoder: ReadonlyArray<import("./gpu-engine.ts").Dispatch>
    readonly step: ReadonlyArray<import("./gpu-engine.ts").Dispatch>
    readonly logits: T
    readonly value: T
    readonly chosen: T
  }

  const buildSampling = (B: number, P: number): SamplingGraph => {
    const R = recorder(false)
    const M = P + N
    const Tmax = s.answerTokens
    const inputs = {
      prompt: R.input(B * P),
      patches: R.input(B * N * S),
      mask: R.input(B * M),
      copyOffsets: R.input(B * (V + 1)),
      copyRows: R.input(2 * B * P),
      token: R.input(B),
      t: R.input(1),
      choice: R.input(2 * B + 1)
    }
    const enc = R.encode(B, P, inputs)
    const cross = Array.from({ length: s.decoderLayers }, (_, l) => ({
      k: R.dense(rows(enc.memory, d), B * M, d, p(`decoder${l}.cross.k`), d),
      v: R.dense(rows(enc.memory, d), B * M, d, p(`decoder${l}.cross.v`), d)
    }))
    const encoder = R.forward.splice(0)
    const caches = Array.from({ length: s.decoderLayers }, () => ({ k: E.alloc(B * Tmax * d), v: E.alloc(B * Tmax * d) }))
    const x = E.alloc(B * d)
    R.forward.push(E.ew(
      /* wgsl */ `
      let j = i % u.p0;
      let b = i / u.p0;
      out[u.oo + i] = x1[u.o1 + u32(x0[u.o0 + b]) * u.p0 + j] + x2[u.o2 + u32(x3[u.o3]) * u.p0 + j];`,
      { out: x, inputs: [inputs.token, p("token_embedding"), p("answer_position"), inputs.t], n: B * d, p: [d] }
    ))
    const store = (from: T, cache: T) =>
      R.forward.push(E.ew(
        /* wgsl */ `
        let j = i % u.p0;
        let b = i / u.p0;
        out[u.oo + (b * u.p1 + u32(x1[u.o1])) * u.p0 + j] = x0[u.o0 + i];`,
        { out: cache, inputs: [from, inputs.t], n: B * d, p: [d, Tmax] }
      ))
    const { out, logits } = R.decode(x, B, 1, {
      cross,
      M,
      mask: inputs.mask,
      self: (l, h, res) => {
        const name = `decoder${l}.self`
        store(R.dense(rows(h, d), B, d, p(`${name}.k`), d), caches[l]!.k)
        store(R.dense(rows(h, d), B, d, p(`${name}.v`), d), caches[l]!.v)
        return R.attention(res, h, B, 1, Tmax, name, { keys: caches[l]!, limit: inputs.t })
      }
    })
    if (enc.keys !== undefined) {
      R.copyHead(out, logits, enc.keys, B, 1, P, M, inputs.mask, { offsets: inputs.copyOffsets, rows: inputs.copyRows, ids: inputs.copyRows })
    }
    const value = R.valueHead(out, B, 1)
    // each row's next token at the temperature (the last float of `choice`): forced (≥ 0), the
    // most likely (−1, the first of equals) or drawn by inverting the distribution at the row's
    // uniform draw (−2); with its log-probability
    const chosen = E.alloc(2 * B)
    R.forward.push(E.ew(
      /* wgsl */ `
      let base = u.o0 + i * u.p0;
      let tau = x1[u.o1 + 2u * u.p1];
      let mode = x1[u.o1 + i * 2u];
      var m = -3.4e38;
      var best = 0u;
      for (var k = 0u; k < u.p0; k++) {
        let z = x0[base + k] / tau;
        if (z > m) { m = z; best = k; }
      }
      var sum = 0.0;
      for (var k = 0u; k < u.p0; k++) { sum += exp(x0[base + k] / tau - m); }
      let logZ = m + log(sum);
      var id = best;
      if (mode >= 0.0) { id = u32(mode); }
      if (mode < -1.5) {
        var r = x1[u.o1 + i * 2u + 1u];
        id = u.p0 - 1u;
        for (var k = 0u; k < u.p0; k++) {
          r -= exp(x0[base + k] / tau - logZ);
          if (r < 0.0) { id = k; break; }
        }
      }
      out[u.oo + i * 2u] = f32(id);
      out[u.oo + i * 2u + 1u] = x0[base + id] / tau - logZ;`,
      { out: chosen, inputs: [logits, inputs.choice], n: B, p: [V, B] }
    ))
    return { B, P, inputs, encoder, step: R.forward, logits, value, chosen }
  }

  /** Recorded graphs by shape, the most recently used last (a few kept: each holds its batch's intermediates). */
  const graphs = new Map<string, { readonly graph: TrainingGraph | SamplingGraph; readonly owner: object }>()
  const KEEP = 4
  const graph = <G extends TrainingGraph | SamplingGraph>(key: string, build: () => G): G => {
    let found = graphs.get(key)
    if (found === undefined) {
      while (graphs.size >= KEEP) {
        const [oldest, g] = graphs.entries().next().value!
        graphs.delete(oldest)
        E.release(g.owner)
      }
      const owner = {}
      found = { graph: E.building(owner, build), owner }
    } else graphs.delete(key)
    graphs.set(key, found)
    return found.graph as G
  }

  /** Ids as floats, a PAD-padded [rows, width] block from ragged rows. */
  const padded = (xs: ReadonlyArray<ArrayLike<number>>, rowsN: number, width: number): Float32Array => {
    const out = new Float32Array(rowsN * width)
    xs.forEach((x, i) => {
      for (let k = 0; k < Math.min(width, x.length); k++) out[i * width + k] = x[k]!
    })
    return out
  }
  /**
   * The positions of each id in `ids` (row-major), grouped by id: offsets [V + 1] and positions.
   * PAD's positions are left out: nothing downstream reads them (masked as keys, weightless as
   * targets), so their gradient is zero.
   */
  const byId = (ids: Float32Array): { offsets: Float32Array; rows: Float32Array } => {
    const counts = new Uint32Array(V + 1)
    for (const id of ids) if (id !== PAD) counts[id + 1]!++
    for (let v = 0; v < V; v++) counts[v + 1]! += counts[v]!
    const offsets = Float32Array.from(counts)
    const at = counts.slice(0, V)
    const out = new Float32Array(ids.length)
    ids.forEach((id, r) => {
      if (id !== PAD) out[at[id]!++] = r
    })
    return { offsets, rows: out }
  }
  /** The copy head's lists: per batch element and token id, the prompt positions holding it or a token whose bare form it is. */
  const copyLists = (prompt: Float32Array, B: number, P: number) => {
    const offsets = new Float32Array(B * (V + 1))
    const list = new Float32Array(2 * B * P)
    const ids = new Float32Array(2 * B * P)
    let at = 0
    for (let b = 0; b < B; b++) {
      const per: number[][] = []
      for (let k = 0; k < P; k++) {
        const id = prompt[b * P + k]!
        const bareId = bare[id]!
        // a PAD position's attention is zero (masked)
        if (id !== PAD) {
          ;(per[id] ??= []).push(k)
          if (bareId !== id) (per[bareId] ??= []).push(k)
        }
        ids[(b * P + k) * 2] = id
        ids[(b * P + k) * 2 + 1] = bareId !== id ? bareId : -1
      }
      for (let v = 0; v < V; v++) {
        offsets[b * (V + 1) + v] = at
        for (const k of per[v] ?? []) list[at++] = k
      }
      offsets[b * (V + 1) + V] = at
    }
    return { offsets, list, ids }
  }
  /** The additive mask of the encoder's positions [B, P + N]: the prompt's padding (PAD = 0) and padded batch rows. */
  const maskOf = (prompt: Float32Array, B: number, P: number) => {
    const out = new Float32Array(B * (P + N))
    for (let b = 0; b < B; b++) for (let k = 0; k < P; k++) out[b * (P + N) + k] = prompt[b * P + k] === 0 ? NEG : 0
    return out
  }
  const bucketP = (longest: number) => Math.min(s.promptTokens, roundUp(Math.max(1, longest), 64))

  let pending: { graph: TrainingGraph; B: number } | undefined

  /**
   * The most batch elements one graph may take (a multiple of 8): its largest intermediates per
   * element — the MLP's hidden layer over prompt and image, the logits and the copy head's
   * scores over the answer (one token when decoding) — must fit one binding.
   */
  const capacity = (training: boolean): number => {
    const T = training ? s.answerTokens : 1
    const M = s.promptTokens + N
    const per = Math.max(M * 4 * d, T * V, T * s.promptTokens, T * 4 * d)
    return Math.max(8, Math.floor(E.bindable / per / 8) * 8)
  }

  return {
    total,
    offset,
    capacity,
    /** Copies the parameters (a flat array in parameterSpecs order) to the GPU. */
    upload: (flat: Float32Array) => E.write(params, flat),
    /**
     * The teacher-forced forward pass of a batch: each answer's log-probability (weighted), value
     * and entropy. Its intermediates stay on the GPU for `backward`.
     */
    evaluate: async (batch: {
      readonly prompts: ReadonlyArray<Int32Array>
      readonly patches: ReadonlyArray<Float32Array>
      readonly inputs: ReadonlyArray<Int32Array>
      readonly targets: ReadonlyArray<Int32Array>
      readonly weights: ReadonlyArray<Float32Array>
    }, temperature: number): Promise<Evaluated> => {
      const n = batch.prompts.length
      const B = roundUp(n, 8)
      const P = bucketP(Math.max(...batch.prompts.map((x) => x.length)))
      const T = Math.min(s.answerTokens, roundUp(Math.max(...batch.targets.map((x) => x.length)), 16))
      const G = graph(`train ${B}×${P}×${T}`, () => buildTraining(B, P, T))
      const prompt = padded(batch.prompts, B, P)
      const answer = padded(batch.inputs, B, T)
      const positions = new Float32Array(B * T * 3)
      batch.targets.forEach((targets, i) => {
        for (let k = 0; k < targets.length; k++) {
          positions.set([targets[k]!, batch.weights[i]![k]!, 1], (i * T + k) * 3)
        }
      })
      const patches = new Float32Array(B * N * S)
      batch.patches.forEach((x, i) => patches.set(x, i * N * S))
      const promptLists = byId(prompt)
      const answerLists = byId(answer)
      const copy = copyLists(prompt, B, P)
      const coefficients = new Float32Array(3 * B + 1)
      coefficients[3 * B] = Math.max(temperature, 1e-6)
      const w = G.inputs
      E.write(w.prompt!, prompt)
      E.write(w.patches!, patches)
      E.write(w.mask!, maskOf(prompt, B, P))
      E.write(w.answer!, answer)
      E.write(w.positions!, positions)
      E.write(w.coefficients!, coefficients)
      E.write(w.promptOffsets!, promptLists.offsets)
      E.write(w.promptRows!, promptLists.rows)
      E.write(w.answerOffsets!, answerLists.offsets)
      E.write(w.answerRows!, answerLists.rows)
      E.write(w.copyOffsets!, copy.offsets)
      E.write(w.copyRows!, copy.list)
      E.write(w.copyIds!, copy.ids)
      const [logProbs, values, entropies] = await E.run(G.forward, { reads: [G.evaluation.logProb, G.evaluation.value, G.evaluation.entropy] })
      pending = { graph: G, B: n }
      return { logProbs: logProbs!.slice(0, n), values: values!.slice(0, n), entropies: entropies!.slice(0, n) }
    },
    /**
     * The gradient of Σ c·(log-probability, value, entropy) over the batch of the last `evaluate`
     * (its forward pass is still in the GPU's buffers): one flat array in parameterSpecs order.
     */
    backward: async (
      c: { readonly logProb: ReadonlyArray<number>; readonly value: ReadonlyArray<number>; readonly entropy: ReadonlyArray<number> },
      temperature: number
    ) => {
      if (pending === undefined) throw new Error("backward() without an evaluate() before it")
      const { graph: G, B: n } = pending
      pending = undefined
      const coefficients = new Float32Array(3 * G.B + 1)
      coefficients.set(c.logProb.slice(0, n), 0)
      coefficients.set(c.value.slice(0, n), G.B)
      coefficients.set(c.entropy.slice(0, n), 2 * G.B)
      coefficients[3 * G.B] = Math.max(temperature, 1e-6)
      E.write(G.inputs.coefficients!, coefficients)
      const [flat] = await E.run(G.backward, { clear: G.clear, reads: [grads] })
      return flat!
    },
    /**
     * Starts decoding a batch: the encoder's pass over the prompts and images; `step` then feeds
     * each row's next input token at position t and returns the next-token logits [rows, V] (the
     * copy head's share included) and the value [rows].
     */
    start: async (prompts: ReadonlyArray<Int32Array>, patches: ReadonlyArray<Float32Array>) => {
      const n = prompts.length
      const B = roundUp(n, 8)
      const P = bucketP(Math.max(...prompts.map((x) => x.length)))
      const G = graph(`sample ${B}×${P}`, () => buildSampling(B, P))
      const prompt = padded(prompts, B, P)
      const image = new Float32Array(B * N * S)
      patches.forEach((x, i) => image.set(x, i * N * S))
      const copy = copyLists(prompt, B, P)
      E.write(G.inputs.prompt!, prompt)
      E.write(G.inputs.patches!, image)
      E.write(G.inputs.mask!, maskOf(prompt, B, P))
      E.write(G.inputs.copyOffsets!, copy.offsets)
      E.write(G.inputs.copyRows!, copy.list)
      await E.run(G.encoder)
      const feed = (tokens: ArrayLike<number>, t: number) => {
        const ids = new Float32Array(B)
        for (let i = 0; i < n; i++) ids[i] = tokens[i]!
        E.write(G.inputs.token!, ids)
        E.write(G.inputs.t!, Float32Array.of(t))
      }
      return {
        step: async (tokens: ArrayLike<number>, t: number): Promise<{ logits: Float32Array; values: Float32Array }> => {
          feed(tokens, t)
          const [logits, values] = await E.run(G.step, { reads: [G.logits, G.value] })
          return { logits: logits!.subarray(0, n * V), values: values!.subarray(0, n) }
        },
        /**
         * A step that also chooses each row's next token on the GPU — `modes[i]` a forced id
         * (≥ 0), −1 the most likely, −2 a draw at `uniforms[i]` — and reads back only the
         * choices, their log-probabilities at the temperature, and the values.
         */
        choose: async (
          tokens: ArrayLike<number>,
          t: number,
          choice: { readonly modes: ArrayLike<number>; readonly uniforms: ArrayLike<number>; readonly temperature: number }
        ): Promise<{ ids: Int32Array; logProbs: Float32Array; values: Float32Array }> => {
          feed(tokens, t)
          const c = new Float32Array(2 * B + 1)
          for (let i = 0; i < n; i++) {
            c[2 * i] = choice.modes[i]!
            c[2 * i + 1] = choice.uniforms[i]!
          }
          c[2 * B] = Math.max(choice.temperature, 1e-6)
          E.write(G.inputs.choice!, c)
          const [chosen, values] = await E.run(G.step, { reads: [G.chosen, G.value] })
          return {
            ids: Int32Array.from({ length: n }, (_, i) => chosen![2 * i]!),
            logProbs: Float32Array.from({ length: n }, (_, i) => chosen![2 * i + 1]!),
            values: values!.subarray(0, n)
          }
        }
      }
    },
    destroy: () => {
      for (const g of graphs.values()) E.release(g.owner)
      graphs.clear()
      E.release(shared)
    }
  }
}
