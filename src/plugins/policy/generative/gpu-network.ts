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
import { type Engine, makeEngine, type Operand, rows, type T, transposed } from "./gpu-engine.ts"
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
  const H = s.heads
  const dh = d / H
  const V = s.vocab
  const N = patchCount(s)
  const S = patchSize(s)
  const specs = parameterSpecs(s)
  const offset = new Map<string, number>()
  let total = 0
  for (const spec of specs) {
    offset.set(spec.name, total)
    total += spec.shape.reduce((a, b) => a * b, 1)
  }
  const shared = {}
  const { params, grads } = E.building(shared, () => ({ params: E.alloc(total), grads: E.alloc(total) }))
  const p = (name: string): T => {
    const at = offset.get(name)
    if (at === undefined) throw new Error(`no parameter ${name}`)
    const n = specs.find((x) => x.name === name)!.shape.reduce((a, b) => a * b, 1)
    return { buf: params.buf, off: at, n, g: { buf: grads.buf, off: at, n } }
  }

  /**
   * A recorder of one graph: the forward dispatches, and (training) the tape of the backward
   * ones. `fixed` marks arrays without a gradient (inputs).
   */
  const recorder = (train: boolean) => {
    const forward: Array<import("./gpu-engine.ts").Dispatch> = []
    const tape: Array<() => Array<import("./gpu-engine.ts").Dispatch>> = []
    const fixed = new Set<T>()
    const gradients: GPUBuffer[] = []
    const g = (x: T): T => {
      if (x.of !== undefined) return E.view(g(x.of.t), x.of.at, x.n)
      if (x.g === undefined) {
        x.g = E.alloc(x.n)
        gradients.push(x.g.buf)
      }
      return x.g
    }
    const input = (n: number): T => {
      const t = E.alloc(n)
      fixed.add(t)
      return t
    }
    const back = (f: () => Array<import("./gpu-engine.ts").Dispatch>) => {
      if (train) tape.push(f)
    }
    const needs = (t: T) => train && !fixed.has(t.of?.t ?? t)

    /** y = x·W (+ b) (relu) (+ residual) over `n` rows of x (a strided operand: rows(x, din) when contiguous). */
    const dense = (
      x: Operand,
      n: number,
      din: number,
      w: T,
      dout: number,
      o: { bias?: T | undefined; relu?: boolean | undefined; residual?: T | undefined } = {}
    ): T => {
      const y = E.alloc(n * dout)
      forward.push(...E.matmul({ a: x, b: rows(w, dout), c: rows(y, dout), Z: 1, M: n, N: dout, K: din, bias: o.bias, relu: o.relu, addend: o.residual }))
      back(() => {
        const out: Array<import("./gpu-engine.ts").Dispatch> = []
        let dy = g(y)
        if (o.residual !== undefined && needs(o.residual)) {
          out.push(E.ew(`out[u.oo + i] += x0[u.o0 + i];`, { out: g(o.residual), inputs: [dy], n: n * dout }))
        }
        if (o.relu === true) {
          const dpre = E.alloc(n * dout)
          out.push(E.ew(`out[u.oo + i] = select(0.0, x1[u.o1 + i], x0[u.o0 + i] > 0.0);`, { out: dpre, inputs: [y, dy], n: n * dout }))
          dy = dpre
        }
        if (needs(x.t)) {
          out.push(...E.matmul({ a: rows(dy, dout), b: transposed(rows(w, dout)), c: { ...x, t: g(x.t) }, Z: 1, M: n, N: din, K: dout, accumulate: true }))
        }
        out.push(...E.matmul({ a: transposed(x), b: rows(dy, dout), c: rows(w.g!, dout), Z: 1, M: din, N: dout, K: n, accumulate: true }))
        if (o.bias !== undefined) out.push(...E.columnSum(dy, n, dout, o.bias.g!))
        return out
      })
      return y
    }

    /** C_z = α·A_z·B_z over Z = Z1·Z2 batches, into a fresh array (or `into`) laid out by `c(t)`. */
    const product = (
      a: Operand,
      b: Operand,
      size: number,
      c: (t: T) => Operand,
      dims: { Z: number; Z2?: number; M: number; N: number; K: number; alpha?: number },
      into?: T
    ): T => {
      const y = into ?? E.alloc(size)
      const co = c(y)
      forward.push(...E.matmul({ a, b, c: co, ...dims }))
      back(() => {
        const dc = { ...co, t: g(y) }
        const out: Array<import("./gpu-engine.ts").Dispatch> = []
        const shared = (o: Operand) => o.s1 === 0 && o.s2 === 0 && dims.Z > 1
        if (needs(a.t)) {
          out.push(
            ...E.matmul({ ...dims, a: dc, b: transposed(b), c: { ...a, t: g(a.t) }, M: dims.M, N: dims.K, K: dims.N, accumulate: true, reduce: shared(a) })
          )
        }
        if (needs(b.t)) {
          out.push(
            ...E.matmul({ ...dims, a: transposed(a), b: dc, c: { ...b, t: g(b.t) }, M: dims.K, N: dims.N, K: dims.M, accumulate: true, reduce: shared(b) })
          )
        }
        return out
      })
      return y
    }

    /** Layer norm over rows of width `w`, the named gain and bias. */
    const norm = (x: T, n: number, name: string, w = d): T => {
      const gain = p(`${name}.gain`)
      const bias = p(`${name}.bias`)
      const y = E.alloc(n * w)
      const stats = /* wgsl */ `
        let base = u.o0 + i * u.p0;
        var m = 0.0;
        for (var j = 0u; j < u.p0; j++) { m += x0[base + j]; }
        m /= f32(u.p0);
        var v = 0.0;
        for (var j = 0u; j < u.p0; j++) { let e = x0[base + j] - m; v += e * e; }
        let rs = inverseSqrt(v / f32(u.p0) + 1e-5);`
      forward.push(E.ew(
        `${stats}
        for (var j = 0u; j < u.p0; j++) { out[u.oo + i * u.p0 + j] = (x0[base + j] - m) * rs * x1[u.o1 + j] + x2[u.o2 + j]; }`,
        {
          out: y,
          inputs: [x, gain, bias],
          n,
          p: [w]
        }
      ))
      back(() => {
        const dy = g(y)
        const xh = E.alloc(n * w)
        const out = [
          // x̂ and dy·x̂, then dx = rs·(dy·γ − mean(dy·γ) − x̂·mean(dy·γ·x̂))
          E.ew(
            `${stats}
            for (var j = 0u; j < u.p0; j++) { out[u.oo + i * u.p0 + j] = (x0[base + j] - m) * rs; }`,
            { out: xh, inputs: [x], n, p: [w] }
          )
        ]
        if (needs(x)) {
          out.push(E.ew(
            `${stats}
            var a = 0.0;
            var b = 0.0;
            for (var j = 0u; j < u.p0; j++) { let e = x1[u.o1 + i * u.p0 + j] * x2[u.o2 + j]; a += e; b += e * x3[u.o3 + i * u.p0 + j]; }
            a /= f32(u.p0);
            b /= f32(u.p0);
            for (var j = 0u; j < u.p0; j++) {
              let e = x1[u.o1 + i * u.p0 + j] * x2[u.o2 + j];
              out[u.oo + i * u.p0 + j] += rs * (e - a - x3[u.o3 + i * u.p0 + j] * b);
            }`,
            { out: g(x), inputs: [x, dy, gain, xh], n, p: [w] }
          ))
        }
        const prod = E.alloc(n * w)
        out.push(E.ew(`out[u.oo + i] = x0[u.o0 + i] * x1[u.o1 + i];`, { out: prod, inputs: [dy, xh], n: n * w }))
        out.push(...E.columnSum(prod, n, w, gain.g!), ...E.columnSum(dy, n, w, bias.g!))
        return out
      })
      return y
    }

    /**
     * Softmax over rows of length L of x (rows ordered b, h, q for H heads and Tq queries), with
     * an additive mask [B, stride] (`mask`), causal (key ≤ query) or up to a position read from
     * `limit` (key ≤ limit[0]).
     */
    const softmax = (
      x: T,
      n: number,
      L: number,
      o: { H: number; Tq: number; mask?: T | undefined; stride?: number | undefined; causal?: boolean | undefined; limit?: T | undefined }
    ): T => {
      const y = E.alloc(n * L)
      forward.push(E.ew(
        /* wgsl */ `
        let base = i * u.p0;
        let b = i / (u.p1 * u.p2);
        var limit = u.p0;
        if (u.p4 == 1u) { limit = i % u.p2 + 1u; }
        if (u.p6 == 1u) { limit = min(u.p0, u32(x2[u.o2]) + 1u); }
        var m = -3.4e38;
        for (var j = 0u; j < limit; j++) {
          var e = x0[u.o0 + base + j];
          if (u.p3 == 1u) { e += x1[u.o1 + b * u.p5 + j]; }
          m = max(m, e);
        }
        var sum = 0.0;
        for (var j = 0u; j < limit; j++) {
          var e = x0[u.o0 + base + j];
          if (u.p3 == 1u) { e += x1[u.o1 + b * u.p5 + j]; }
          let z = exp(e - m);
          out[u.oo + base + j] = z;
          sum += z;
        }
        for (var j = 0u; j < limit; j++) { out[u.oo + base + j] /= sum; }
        for (var j = limit; j < u.p0; j++) { out[u.oo + base + j] = 0.0; }`,
        {
          out: y,
          inputs: [x, o.mask ?? x, o.limit ?? x],
          n,
          p: [L, o.H, o.Tq, o.mask === undefined ? 0 : 1, o.causal === true ? 1 : 0, o.stride ?? L, o.limit === undefined ? 0 : 1]
        }
      ))
      back(() => [
        E.ew(
          /* wgsl */ `
          let base = i * u.p0;
          var s = 0.0;
          for (var j = 0u; j < u.p0; j++) { s += x0[u.o0 + base + j] * x1[u.o1 + base + j]; }
          for (var j = 0u; j < u.p0; j++) { out[u.oo + base + j] += x0[u.o0 + base + j] * (x1[u.o1 + base + j] - s); }`,
          { out: g(x), inputs: [y, g(y)], n, p: [L] }
        )
      ])
      return y
    }

    /**
     * Multi-head attention of queries from h [B, Tq, d] over keys and values from kv [B, Tk, d]
     * (or given keys and values), added to the residual x.
     */
    const attention = (
      x: T,
      h: T,
      B: number,
      Tq: number,
      Tk: number,
      name: string,
      o: {
        kv?: T | undefined
        keys?: { k: T; v: T } | undefined
        mask?: T | undefined
        stride?: number | undefined
        causal?: boolean | undefined
        limit?: T | undefined
        kStride?: number | undefined
      }
    ): T => {
      const q = dense(rows(h, d), B * Tq, d, p(`${name}.q`), d)
      const k = o.keys?.k ?? dense(rows(o.kv!, d), B * Tk, d, p(`${name}.k`), d)
      const v = o.keys?.v ?? dense(rows(o.kv!, d), B * Tk, d, p(`${name}.v`), d)
      const kStride = o.kStride ?? Tk
      const head = (t: T, T_: number): Operand => ({ t, s1: T_ * d, s2: dh, r: d, c: 1 })
      const joined = E.alloc(B * Tq * d)
      // the scores [b, H, Tq, Tk] of as many batch elements at a time as one binding holds
      const per = H * Tq * Tk
      const chunk = Math.max(1, Math.min(B, Math.floor(E.bindable / per)))
      for (let b0 = 0; b0 < B; b0 += chunk) {
        const n = Math.min(chunk, B - b0)
        const part = (t: T, rowsPer: number) => (n === B ? t : E.view(t, b0 * rowsPer, n * rowsPer))
        const scores = product(
          head(part(q, Tq * d), Tq),
          transposed(head(part(k, kStride * d), kStride)),
          n * per,
          (t) => ({ t, s1: per, s2: Tq * Tk, r: Tk, c: 1 }),
          {
            Z: n * H,
            Z2: H,
            M: Tq,
            N: Tk,
            K: dh,
            alpha: 1 / Math.sqrt(dh)
          }
        )
        const mask = o.mask === undefined ? undefined : part(o.mask, o.stride ?? Tk)
        const weights = softmax(scores, n * H * Tq, Tk, { H, Tq, mask, stride: o.stride, causal: o.causal, limit: o.limit })
        product({ t: weights, s1: per, s2: Tq * Tk, r: Tk, c: 1 }, head(part(v, kStride * d), kStride), n * Tq * d, (t) => head(t, Tq), {
          Z: n * H,
          Z2: H,
          M: Tq,
          N: dh,
          K: Tk
        }, part(joined, Tq * d))
      }
      return dense(rows(joined, d), B * Tq, d, p(`${name}.o`), d, { residual: x })
    }

    const mlp = (x: T, n: number, name: string): T => {
      const h = norm(x, n, `${name}.norm2`)
      const hidden = dense(rows(h, d), n, d, p(`${name}.mlp.w1`), 4 * d, { bias: p(`${name}.mlp.b1`), relu: true })
      return dense(rows(hidden, 4 * d), n, 4 * d, p(`${name}.mlp.w2`), d, { bias: p(`${name}.mlp.b2`), residual: x })
    }

    /**
     * Token embeddings plus positions, into rows of an array [B, stride, d] (the first L rows of
     * each batch element); `lists` (training): the ids' rows grouped by id, for the table's gradient.
     */
    const embed = (ids: T, B: number, L: number, stride: number, out: T, position: string, lists?: { offsets: T; rows: T }) => {
      const table = p("token_embedding")
      const pos = p(position)
      forward.push(E.ew(
        /* wgsl */ `
        let j = i % u.p0;
        let r = i / u.p0;
        let b = r / u.p1;
        let l = r % u.p1;
        out[u.oo + (b * u.p2 + l) * u.p0 + j] = x1[u.o1 + u32(x0[u.o0 + r]) * u.p0 + j] + x2[u.o2 + l * u.p0 + j];`,
        { out, inputs: [ids, table, pos], n: B * L * d, p: [d, L, stride] }
      ))
      back(() => [
        E.ew(
          /* wgsl */ `
          let v = i / u.p0;
          let j = i % u.p0;
          var s = 0.0;
          for (var k = u32(x0[u.o0 + v]); k < u32(x0[u.o0 + v + 1u]); k++) {
            let r = u32(x1[u.o1 + k]);
            s += x2[u.o2 + ((r / u.p1) * u.p2 + r % u.p1) * u.p0 + j];
          }
          out[u.oo + i] += s;`,
          { out: table.g!, inputs: [lists!.offsets, lists!.rows, g(out)], n: V * d, p: [d, L, stride] }
        ),
        E.ew(
          /* wgsl */ `
          let l = i / u.p0;
          let j = i % u.p0;
          var s = 0.0;
          for (var b = 0u; b < u.p3; b++) { s += x0[u.o0 + (b * u.p2 + l) * u.p0 + j]; }
          out[u.oo + i] += s;`,
          { out: pos.g!, inputs: [g(out)], n: L * d, p: [d, L, stride, B] }
        )
      ])
    }

    /**
     * The encoder over prompts [B, P] and patches: its output [B, M = P + N, d] and the prompt's
     * tokens for the copy head. `inputs` are the graph's input arrays.
     */
    const encode = (B: number, P: number, x: {
      prompt: T
      patches: T
      mask: T
      promptLists?: { offsets: T; rows: T }
    }) => {
      const M = P + N
      const memory = E.alloc(B * M * d)
      embed(x.prompt, B, P, M, memory, "prompt_position", x.promptLists)
      const image = dense(rows(x.patches, S), B * N, S, p("patch_w"), d, { bias: p("patch_b") })
      const pos = p("patch_position")
      forward.push(E.ew(
        /* wgsl */ `
        let j = i % u.p0;
        let r = i / u.p0;
        let b = r / u.p1;
        let k = r % u.p1;
        out[u.oo + (b * u.p2 + u.p3 + k) * u.p0 + j] = x0[u.o0 + i] + x1[u.o1 + k * u.p0 + j];`,
        { out: memory, inputs: [image, pos], n: B * N * d, p: [d, N, M, P] }
      ))
      back(() => [
        E.ew(
          /* wgsl */ `
          let j = i % u.p0;
          let r = i / u.p0;
          out[u.oo + i] += x0[u.o0 + ((r / u.p1) * u.p2 + u.p3 + r % u.p1) * u.p0 + j];`,
          { out: g(image), inputs: [g(memory)], n: B * N * d, p: [d, N, M, P] }
        ),
        E.ew(
          /* wgsl */ `
          let k = i / u.p0;
          let j = i % u.p0;
          var s = 0.0;
          for (var b = 0u; b < u.p4; b++) { s += x0[u.o0 + (b * u.p2 + u.p3 + k) * u.p0 + j]; }
          out[u.oo + i] += s;`,
          { out: pos.g!, inputs: [g(memory)], n: N * d, p: [d, N, M, P, B] }
        )
      ])
      let h = memory
      for (let l = 0; l < s.encoderLayers; l++) {
        const name = `encoder${l}`
        const n1 = norm(h, B * M, `${name}.norm1`)
        h = attention(h, n1, B, M, M, `${name}.self`, { kv: n1, mask: x.mask, stride: M })
        h = mlp(h, B * M, name)
      }
      // the copy head's keys: the prompt's positions of the output
      const keys = s.copy
        ? product({ t: h, s1: M * d, s2: 0, r: d, c: 1 }, rows(p("copy_k"), d), B * P * d, (t) => rows(t, d, P * d), { Z: B, M: P, N: d, K: d })
        : undefined
      return { memory: h, M, keys }
    }

    /**
     * The decoder's blocks over x [B, Tq, d] (Tq = 1 when stepping with a cache; `self` is the
     * self-attention, causal or over the cache), the final norm, and the logits [B·Tq, V]: the
     * final states times the token table transposed, plus the output bias.
     */
    const decode = (x0: T, B: number, Tq: number, o: {
      memory?: T | undefined
      cross?: ReadonlyArray<{ k: T; v: T }> | undefined
      M: number
      mask: T
      self: (l: number, h: T, x: T) => T
    }) => {
      let x = x0
      for (let l = 0; l < s.decoderLayers; l++) {
        const name = `decoder${l}`
        x = o.self(l, norm(x, B * Tq, `${name}.norm1`), x)
        const c = norm(x, B * Tq, `${name}.norm_cross`)
        x = attention(x, c, B, Tq, o.M, `${name}.cross`, { kv: o.memory, keys: o.cross?.[l], mask: o.mask, stride: o.M })
        x = mlp(x, B * Tq, name)
      }
      const out = norm(x, B * Tq, "final_norm")
      const table = p("token_embedding")
      const bias = p("output_bias")
      const logits = product(rows(out, d), { t: table, s1: 0, s2: 0, r: 1, c: d }, B * Tq * V, (t) => rows(t, V), { Z: 1, M: B * Tq, N: V, K: d })
      forward.push(E.ew(`out[u.oo + i] += x0[u.o0 + i % u.p0];`, { out: logits, inputs: [bias], n: B * Tq * V, p: [V] }))
      back(() => E.columnSum(g(logits), B * Tq, V, bias.g!))
      return { out, logits }
    }

    /** The value [B] from the final state at each answer's first position (rows Tq apart). */
    const valueHead = (out: T, B: number, Tq: number): T => {
      const h1 = dense({ t: out, s1: 0, s2: 0, r: Tq * d, c: 1 }, B, d, p("value_w1"), d, { bias: p("value_b1"), relu: true })
      return dense(rows(h1, d), B, d, p("value_w2"), 1, { bias: p("value_b2") })
    }

    /**
     * The copy head: attention from the final states [B, Tq, d] over the prompt's keys [B, P, d],
     * its strength, and their share added to the logits by the lists of each batch element's
     * positions per token id (`copy.offsets` [B, V + 1], `copy.rows`).
     */
    const copyHead = (out: T, logits: T, keys: T, B: number, Tq: number, P: number, M: number, mask: T, lists: { offsets: T; rows: T; ids: T }) => {
      const cq = dense(rows(out, d), B * Tq, d, p("copy_q"), d)
      const scores = product(rows(cq, d, Tq * d), transposed(rows(keys, d, P * d)), B * Tq * P, (t) => rows(t, P, Tq * P), {
        Z: B,
        M: Tq,
        N: P,
        K: d,
        alpha: 1 / Math.sqrt(d)
      })
      const attend = softmax(scores, B * Tq, P, { H: 1, Tq, mask, stride: M })
      const pre = dense(rows(out, d), B * Tq, d, p("copy_gate_w"), 1, { bias: p("copy_gate_b") })
      const strength = E.alloc(B * Tq)
      forward.push(E.ew(`let z = x0[u.o0 + i]; out[u.oo + i] = max(z, 0.0) + log(1.0 + exp(-abs(z)));`, { out: strength, inputs: [pre], n: B * Tq }))
      forward.push(E.ew(
        /* wgsl */ `
        let v = i % u.p0;
        let r = i / u.p0;
        let at = (r / u.p1) * (u.p0 + 1u) + v;
        var s = 0.0;
        for (var k = u32(x0[u.o0 + at]); k < u32(x0[u.o0 + at + 1u]); k++) { s += x2[u.o2 + r * u.p2 + u32(x1[u.o1 + k])]; }
        out[u.oo + i] += x3[u.o3 + r] * s;`,
        { out: logits, inputs: [lists.offsets, lists.rows, attend, strength], n: B * Tq * V, p: [V, Tq, P] }
      ))
      back(() => {
        // G[r, p] = dlogits[r, id_p] + dlogits[r, bare_p] (when the bare form is another token)
        const G = E.alloc(B * Tq * P)
        return [
          E.ew(
            /* wgsl */ `
            let r = i / u.p0;
            let k = i % u.p0;
            let b = r / u.p1;
            let id = x1[u.o1 + (b * u.p0 + k) * 2u];
            let bare = x1[u.o1 + (b * u.p0 + k) * 2u + 1u];
            var e = x0[u.o0 + r * u.p2 + u32(id)];
            if (bare >= 0.0) { e += x0[u.o0 + r * u.p2 + u32(bare)]; }
            out[u.oo + i] = e;`,
            { out: G, inputs: [g(logits), lists.ids], n: B * Tq * P, p: [P, Tq, V] }
          ),
          E.ew(`out[u.oo + i] += x0[u.o0 + i] * x1[u.o1 + i / u.p0];`, { out: g(attend), inputs: [G, strength], n: B * Tq * P, p: [P] }),
          // d pre = Σ_p attend·G · sigmoid(pre)
          E.ew(
            /* wgsl */ `
            var s = 0.0;
            for (var k = 0u; k < u.p0; k++) { s += x0[u.o0 + i * u.p0 + k] * x1[u.o1 + i * u.p0 + k]; }
            out[u.oo + i] += s / (1.0 + exp(-x2[u.o2 + i]));`,
            { out: g(pre), inputs: [attend, G, pre], n: B * Tq, p: [P] }
          )
        ]
      })
    }

    return { forward, tape, gradients, g, input, dense, product, attention, embed, encode, decode, valueHead, copyHead }
  }

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
