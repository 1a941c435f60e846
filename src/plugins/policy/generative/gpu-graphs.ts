/// <reference types="@webgpu/types" />
import { type Dispatch, type Engine, rows, type T } from "./gpu-engine.ts"
import type { Recorder } from "./gpu-layers.ts"
import type { NetworkShape } from "./model.ts"

/**
 * The generator's two recorded graphs for one batch shape (gpu-network.ts keeps them and feeds
 * them): training — the teacher-forced forward pass, each answer's log-probability, value and
 * entropy, and the backward pass of their weighted sum — and sampling — the encoder once, then a
 * decoding step over a key–value cache that chooses its token on the GPU and hands it on to the
 * next step.
 */

/** What a graph is recorded with: the engine, the network's shape, its parameters by name, and a layer recorder. */
export interface GraphContext {
  readonly E: Engine
  readonly shape: NetworkShape
  /** The width, the vocabulary, the image's patches and each patch's floats. */
  readonly d: number
  readonly V: number
  readonly N: number
  readonly S: number
  readonly p: (name: string) => T
  readonly recorder: (train: boolean) => Recorder
}

export interface TrainingGraph {
  readonly B: number
  readonly P: number
  readonly T: number
  readonly inputs: Record<string, T>
  readonly forward: ReadonlyArray<Dispatch>
  readonly backward: ReadonlyArray<Dispatch>
  /** The gradients of the intermediates (cleared before every backward pass; the parameters' gradient before a batch's first). */
  readonly intermediates: ReadonlyArray<GPUBuffer>
  readonly evaluation: { logProb: T; value: T; entropy: T }
}

export const buildTraining = (context: GraphContext, B: number, P: number, T: number): TrainingGraph => {
  const { E, d, V, N, S, recorder } = context
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
  let seed: Dispatch[] = []
  E.within("loss", () => {
    R.forward.push(
      E.rw(
        /* wgsl */ `
        let base = u.o0 + i * u.p0;
        let tau = x2[u.o2 + u.p1];
        let logZ = logPartitionRow(base, u.p0, tau, l).y;
        var h = 0.0;
        for (var v = l; v < u.p0; v += ROW) { let lp = x0[base + v] / tau - logZ; h -= exp(lp) * lp; }
        h = sumRow(h, l);
        if (l == 0u) {
          out[u.oo + i * 3u] = logZ;
          out[u.oo + i * 3u + 1u] = h;
          out[u.oo + i * 3u + 2u] = x0[base + u32(x1[u.o1 + i * 3u])] / tau - logZ;
        }`,
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
    seed = [
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
  })
  const backward = [...seed, ...R.tape.reverse().flatMap((f) => f())]
  return {
    B,
    P,
    T,
    inputs,
    forward: R.forward,
    backward,
    intermediates: R.gradients,
    evaluation: { logProb, value, entropy }
  }
}

export interface SamplingGraph {
  readonly B: number
  readonly P: number
  readonly inputs: Record<string, T>
  readonly encoder: ReadonlyArray<Dispatch>
  readonly step: ReadonlyArray<Dispatch>
  readonly logits: T
  readonly value: T
  readonly chosen: T
  readonly first: T
}

export const buildSampling = (context: GraphContext, B: number, P: number): SamplingGraph => {
  const { E, shape: s, d, V, N, S, p, recorder } = context
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
    choice: R.input(2 * Tmax * B + 1)
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
  // each row's next token at step t, at the temperature (the last float of `choice`): forced
  // (mode ≥ 0), the most likely (−1, the first of equals) or drawn by inverting the distribution
  // at the row's uniform draw (−2); with its log-probability, into the step's row of `chosen`
  // [Tmax, B, 2]. Then the step hands itself on: the chosen tokens become the next inputs, t
  // advances — so several steps run in one submission with nothing read back between them.
  const chosen = E.alloc(Tmax * 2 * B)
  const first = E.alloc(B)
  E.within("choose", () =>
    R.forward.push(
      E.rw(
        /* wgsl */ `
        // a workgroup per row; past the last step (a profile's repeats) nothing is written
        let t = min(u32(x2[u.o2]), u.p2 - 1u);
        let base = u.o0 + i * u.p0;
        let at = (t * u.p1 + i) * 2u;
        let tau = x1[u.o1 + 2u * u.p1 * u.p2];
        let mode = x1[u.o1 + at];
        let mz = logPartitionRow(base, u.p0, tau, l);
        let m = mz.x;
        let logZ = mz.y;
        // the first of equals: the smallest index holding the maximum
        var first = f32(u.p0);
        for (var k = l; k < u.p0; k += ROW) {
          if (x0[base + k] / tau == m) { first = min(first, f32(k)); }
        }
        let best = u32(-maxRow(-first, l));
        if (l == 0u && u32(x2[u.o2]) < u.p2) {
          var id = best;
          if (mode >= 0.0) { id = u32(mode); }
          if (mode < -1.5) {
            var r = x1[u.o1 + at + 1u];
            id = u.p0 - 1u;
            for (var k = 0u; k < u.p0; k++) {
              r -= exp(x0[base + k] / tau - logZ);
              if (r < 0.0) { id = k; break; }
            }
          }
          out[u.oo + at] = f32(id);
          out[u.oo + at + 1u] = x0[base + id] / tau - logZ;
        }`,
        { out: chosen, inputs: [logits, inputs.choice, inputs.t], n: B, p: [V, B, Tmax] }
      ),
      E.ew(`if (u32(x1[u.o1]) == 0u) { out[u.oo + i] = x0[u.o0 + i]; }`, { out: first, inputs: [value, inputs.t], n: B }),
      E.ew(
        `out[u.oo + i] = x0[u.o0 + (min(u32(x1[u.o1]), u.p1 - 1u) * u.p0 + i) * 2u];`,
        { out: inputs.token, inputs: [chosen, inputs.t], n: B, p: [B, Tmax] }
      ),
      E.ew(`out[u.oo] = out[u.oo] + 1.0;`, { out: inputs.t, n: 1 })
    ))
  return { B, P, inputs, encoder, step: R.forward, logits, value, chosen, first }
}
