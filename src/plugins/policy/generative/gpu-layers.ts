/// <reference types="@webgpu/types" />
/**
 * The generator's layers on the engine of gpu-engine.ts, as gpu-network.ts records them into its
 * graphs: dense layers, layer norm, masked softmax, multi-head attention (in batch chunks that fit
 * one binding), the ReLU MLP, token and position embeddings, the encoder, the decoder's blocks,
 * the value head and the copy head — each its forward dispatches and, when training, its
 * gradient's dispatches on the tape.
 */
import { type Dispatch, type Engine, type Operand, rows, type T, transposed } from "./gpu-engine.ts"
import { type NetworkShape, patchCount, patchSize } from "./model.ts"

/**
 * A recorder of one graph: the forward dispatches, and (training) the tape of the backward
 * ones. `fixed` marks arrays without a gradient (inputs). `p` gives a parameter's place in the
 * parameter buffer, its gradient's in the gradient buffer.
 */
export const makeRecorder = (E: Engine, s: NetworkShape, p: (name: string) => T, train: boolean) => {
  const d = s.width
  const H = s.heads
  const dh = d / H
  const V = s.vocab
  const N = patchCount(s)
  const S = patchSize(s)
  const forward: Array<Dispatch> = []
  const tape: Array<() => Array<Dispatch>> = []
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
  const back = (f: () => Array<Dispatch>) => {
    const name = E.scope() === "" ? "gradient" : `${E.scope()} gradient`
    if (train) tape.push(() => E.within(name, f))
  }
  /** A layer whose dispatches (and their gradients') profiles name `name`. */
  const layer = <F extends (...args: never[]) => unknown>(name: string, f: F): F => ((...args: Parameters<F>) => E.within(name, () => f(...args))) as F
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
      const out: Array<Dispatch> = []
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
      const out: Array<Dispatch> = []
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
  const norm = layer("norm", (x: T, n: number, name: string, w = d): T => {
    const gain = p(`${name}.gain`)
    const bias = p(`${name}.bias`)
    const y = E.alloc(n * w)
    // a workgroup per row: its mean, and rs = 1 / √(variance + ε)
    const stats = /* wgsl */ `
      let base = u.o0 + i * u.p0;
      var m = 0.0;
      for (var j = l; j < u.p0; j += ROW) { m += x0[base + j]; }
      m = sumRow(m, l) / f32(u.p0);
      var v = 0.0;
      for (var j = l; j < u.p0; j += ROW) { let e = x0[base + j] - m; v += e * e; }
      let rs = inverseSqrt(sumRow(v, l) / f32(u.p0) + 1e-5);`
    forward.push(E.rw(
      `${stats}
      for (var j = l; j < u.p0; j += ROW) { out[u.oo + i * u.p0 + j] = (x0[base + j] - m) * rs * x1[u.o1 + j] + x2[u.o2 + j]; }`,
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
        E.rw(
          `${stats}
          for (var j = l; j < u.p0; j += ROW) { out[u.oo + i * u.p0 + j] = (x0[base + j] - m) * rs; }`,
          { out: xh, inputs: [x], n, p: [w] }
        )
      ]
      if (needs(x)) {
        out.push(E.rw(
          `${stats}
          var a = 0.0;
          var b = 0.0;
          for (var j = l; j < u.p0; j += ROW) { let e = x1[u.o1 + i * u.p0 + j] * x2[u.o2 + j]; a += e; b += e * x3[u.o3 + i * u.p0 + j]; }
          a = sumRow(a, l) / f32(u.p0);
          b = sumRow(b, l) / f32(u.p0);
          for (var j = l; j < u.p0; j += ROW) {
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
  })

  /**
   * Softmax over rows of length L of x (rows ordered b, h, q for H heads and Tq queries), with
   * an additive mask [B, stride] (`mask`), causal (key ≤ query) or up to a position read from
   * `limit` (key ≤ limit[0]).
   */
  const softmax = layer("softmax", (
    x: T,
    n: number,
    L: number,
    o: { H: number; Tq: number; mask?: T | undefined; stride?: number | undefined; causal?: boolean | undefined; limit?: T | undefined }
  ): T => {
    const y = E.alloc(n * L)
    // a workgroup per row
    forward.push(E.rw(
      /* wgsl */ `
      let base = i * u.p0;
      let b = i / (u.p1 * u.p2);
      var limit = u.p0;
      if (u.p4 == 1u) { limit = i % u.p2 + 1u; }
      if (u.p6 == 1u) { limit = min(u.p0, u32(x2[u.o2]) + 1u); }
      var m = -3.4e38;
      for (var j = l; j < limit; j += ROW) {
        var e = x0[u.o0 + base + j];
        if (u.p3 == 1u) { e += x1[u.o1 + b * u.p5 + j]; }
        m = max(m, e);
      }
      m = maxRow(m, l);
      var sum = 0.0;
      for (var j = l; j < limit; j += ROW) {
        var e = x0[u.o0 + base + j];
        if (u.p3 == 1u) { e += x1[u.o1 + b * u.p5 + j]; }
        let z = exp(e - m);
        out[u.oo + base + j] = z;
        sum += z;
      }
      sum = sumRow(sum, l);
      for (var j = l; j < limit; j += ROW) { out[u.oo + base + j] /= sum; }
      for (var j = limit + l; j < u.p0; j += ROW) { out[u.oo + base + j] = 0.0; }`,
      {
        out: y,
        inputs: [x, o.mask ?? x, o.limit ?? x],
        n,
        p: [L, o.H, o.Tq, o.mask === undefined ? 0 : 1, o.causal === true ? 1 : 0, o.stride ?? L, o.limit === undefined ? 0 : 1]
      }
    ))
    back(() => [
      E.rw(
        /* wgsl */ `
        let base = i * u.p0;
        var s = 0.0;
        for (var j = l; j < u.p0; j += ROW) { s += x0[u.o0 + base + j] * x1[u.o1 + base + j]; }
        s = sumRow(s, l);
        for (var j = l; j < u.p0; j += ROW) { out[u.oo + base + j] += x0[u.o0 + base + j] * (x1[u.o1 + base + j] - s); }`,
        { out: g(x), inputs: [y, g(y)], n, p: [L] }
      )
    ])
    return y
  })

  /**
   * Multi-head attention of queries from h [B, Tq, d] over keys and values from kv [B, Tk, d]
   * (or given keys and values), added to the residual x.
   */
  const attention = layer("attention", (
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
  })

  const mlp = layer("mlp", (x: T, n: number, name: string): T => {
    const h = norm(x, n, `${name}.norm2`)
    const hidden = dense(rows(h, d), n, d, p(`${name}.mlp.w1`), 4 * d, { bias: p(`${name}.mlp.b1`), relu: true })
    return dense(rows(hidden, 4 * d), n, 4 * d, p(`${name}.mlp.w2`), d, { bias: p(`${name}.mlp.b2`), residual: x })
  })

  /**
   * Token embeddings plus positions, into rows of an array [B, stride, d] (the first L rows of
   * each batch element); `lists` (training): the ids' rows grouped by id, for the table's gradient.
   */
  const embed = layer("embed", (ids: T, B: number, L: number, stride: number, out: T, position: string, lists?: { offsets: T; rows: T }) => {
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
  })

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
  const valueHead = layer("valueHead", (out: T, B: number, Tq: number): T => {
    const h1 = dense({ t: out, s1: 0, s2: 0, r: Tq * d, c: 1 }, B, d, p("value_w1"), d, { bias: p("value_b1"), relu: true })
    return dense(rows(h1, d), B, d, p("value_w2"), 1, { bias: p("value_b2") })
  })

  /**
   * The copy head: attention from the final states [B, Tq, d] over the prompt's keys [B, P, d],
   * its strength, and their share added to the logits by the lists of each batch element's
   * positions per token id (`copy.offsets` [B, V + 1], `copy.rows`).
   */
  const copyHead = layer(
    "copyHead",
    (out: T, logits: T, keys: T, B: number, Tq: number, P: number, M: number, mask: T, lists: { offsets: T; rows: T; ids: T }) => {
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
  )

  return { forward, tape, gradients, g, input, dense, product, attention, embed, encode, decode, valueHead, copyHead }
}

export type Recorder = ReturnType<typeof makeRecorder>
