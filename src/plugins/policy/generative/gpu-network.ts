/// <reference types="@webgpu/types" />
/**
 * The generator's network (model.ts) on the engine of gpu-engine.ts: the same parameters, the same
 * arithmetic in single precision, as recorded dispatches — a training graph (teacher-forced
 * forward pass, per-answer log-probability, value and entropy, and the gradient of a weighted sum
 * of them; AdamW's update after it where the learner runs it here) and a sampling graph (the
 * encoder once, then decoding steps over a key–value cache, the copy head's share added on the
 * GPU, the tokens chosen there several steps per submission). Graphs are recorded per batch
 * shape: the batch rounded up to a multiple of 8, the prompt to 64 tokens, the answer to 16
 * (fewer shapes, fewer graphs rebuilt). A few lines past 600: the two graphs and the host side
 * that feeds them read as one (the layers, the kernels and the input packing are already apart).
 */
import type { OptimizerConfig, OptimizerStep } from "../../../core/optimizer.ts"
import { textSetting } from "../../../core/settings.ts"
import { ADAMW, adamwUniforms, NORM_GROUPS } from "../../optimizer/adamw-gpu.ts"
import { type Dispatch, type Engine, makeEngine, rows, type T } from "./gpu-engine.ts"
import { spread } from "./gpu-kernels.ts"
import { makeRecorder } from "./gpu-layers.ts"
import { type NetworkShape, parameterSpecs, patchCount, patchSize } from "./model.ts"
import { makeInputs } from "./gpu-inputs.ts"
import { BOS } from "./tokenizer.ts"

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
    readonly forward: ReadonlyArray<Dispatch>
    readonly backward: ReadonlyArray<Dispatch>
    /** The gradients of the intermediates (cleared before every backward pass; the parameters' gradient before a batch's first). */
    readonly intermediates: ReadonlyArray<GPUBuffer>
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

  interface SamplingGraph {
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

  const { padded, byId, copyLists, maskOf } = makeInputs(V, N, bare)
  const bucketP = (longest: number) => Math.min(s.promptTokens, roundUp(Math.max(1, longest), 64))
  /**
   * What both graphs' encoders read, written into a graph's inputs: the prompts padded to P, the
   * images, the mask and the copy head's lists (returned with the padded prompts).
   */
  const writeEncoderInputs = (inputs: Record<string, T>, prompts: ReadonlyArray<Int32Array>, patches: ReadonlyArray<Float32Array>, B: number, P: number) => {
    const prompt = padded(prompts, B, P)
    const image = new Float32Array(B * N * S)
    patches.forEach((x, i) => image.set(x, i * N * S))
    const copy = copyLists(prompt, B, P)
    E.write(inputs.prompt!, prompt)
    E.write(inputs.patches!, image)
    E.write(inputs.mask!, maskOf(prompt, B, P))
    E.write(inputs.copyOffsets!, copy.offsets)
    E.write(inputs.copyRows!, copy.list)
    return { prompt, copy }
  }

  let pending: { graph: TrainingGraph; B: number } | undefined

  /** AdamW on the GPU, once asked for (`useAdamW`): its settings, step count, moments and dispatches. */
  let adam: {
    readonly config: OptimizerConfig
    readonly learningRate: (step: number) => number
    readonly owner: object
    step: number
    last: OptimizerStep | undefined
    readonly m: T
    readonly v: T
    readonly uniforms: GPUBuffer
    readonly norm: T
    readonly dispatches: ReadonlyArray<Dispatch>
    /** Each training graph's backward pass with the update after it. */
    readonly after: WeakMap<ReadonlyArray<Dispatch>, ReadonlyArray<Dispatch>>
  } | undefined

  /**
   * VIRL_GPU_PROFILE=1: each graph's dispatches timed one by one the first time it runs, the
   * time summed by what they compute (a product's shape, an element-wise kernel's first line),
   * printed to stderr. A diagnostic: the dispatches run again and again, so a step it times
   * accumulates into its outputs more than once.
   */
  const profiling = textSetting("VIRL_GPU_PROFILE") === "1"
  const profiled = new Set<string>()
  const profile = async (key: string, parts: Record<string, ReadonlyArray<Dispatch>>) => {
    if (!profiling || profiled.has(key)) return
    profiled.add(key)
    for (const [part, dispatches] of Object.entries(parts)) process.stderr.write(await E.profile(`${key} ${part}`, dispatches))
  }

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
      const { prompt, copy } = writeEncoderInputs(G.inputs, batch.prompts, batch.patches, B, P)
      const answer = padded(batch.inputs, B, T)
      const positions = new Float32Array(B * T * 3)
      batch.targets.forEach((targets, i) => {
        for (let k = 0; k < targets.length; k++) {
          const at = (i * T + k) * 3
          positions[at] = targets[k]!
          positions[at + 1] = batch.weights[i]![k]!
          positions[at + 2] = 1
        }
      })
      const promptLists = byId(prompt)
      const answerLists = byId(answer)
      const coefficients = new Float32Array(3 * B + 1)
      coefficients[3 * B] = Math.max(temperature, 1e-6)
      const w = G.inputs
      E.write(w.answer!, answer)
      E.write(w.positions!, positions)
      E.write(w.coefficients!, coefficients)
      E.write(w.promptOffsets!, promptLists.offsets)
      E.write(w.promptRows!, promptLists.rows)
      E.write(w.answerOffsets!, answerLists.offsets)
      E.write(w.answerRows!, answerLists.rows)
      E.write(w.copyIds!, copy.ids)
      const [logProbs, values, entropies] = await E.run(G.forward, { reads: [G.evaluation.logProb, G.evaluation.value, G.evaluation.entropy] })
      await profile(`train ${B}×${P}×${T}`, { forward: G.forward, backward: G.backward })
      pending = { graph: G, B: n }
      return { logProbs: logProbs!.slice(0, n), values: values!.slice(0, n), entropies: entropies!.slice(0, n) }
    },
    /**
     * The gradient of Σ c·(log-probability, value, entropy) over the batch of the last `evaluate`
     * (its forward pass is still in the GPU's buffers), added to the parameters' gradient on the
     * GPU (`first`: of a batch, which starts it from zero). After a batch's `last` part: with
     * AdamW on the GPU (`useAdamW`) its step, taken there (`lastStep`); else the gradient, read
     * back as one flat array in parameterSpecs order.
     */
    backward: async (
      c: { readonly logProb: ReadonlyArray<number>; readonly value: ReadonlyArray<number>; readonly entropy: ReadonlyArray<number> },
      temperature: number,
      part: { readonly first: boolean; readonly last: boolean }
    ): Promise<Float32Array | undefined> => {
      if (pending === undefined) throw new Error("backward() without an evaluate() before it")
      const { graph: G, B: n } = pending
      pending = undefined
      const coefficients = new Float32Array(3 * G.B + 1)
      coefficients.set(c.logProb.slice(0, n), 0)
      coefficients.set(c.value.slice(0, n), G.B)
      coefficients.set(c.entropy.slice(0, n), 2 * G.B)
      coefficients[3 * G.B] = Math.max(temperature, 1e-6)
      E.write(G.inputs.coefficients!, coefficients)
      const clear = part.first ? [grads.buf, ...G.intermediates] : G.intermediates
      if (!part.last) {
        await E.run(G.backward, { clear })
        return undefined
      }
      if (adam === undefined) {
        const [flat] = await E.run(G.backward, { clear, reads: [grads] })
        return flat!
      }
      const a = adam
      const step = a.step + 1
      const lr = a.learningRate(step - 1)
      device.queue.writeBuffer(a.uniforms, 0, adamwUniforms(total, a.config, step, lr))
      let updating = a.after.get(G.backward)
      if (updating === undefined) {
        updating = [...G.backward, ...a.dispatches]
        a.after.set(G.backward, updating)
      }
      const [norm] = await E.run(updating, { clear, reads: [a.norm] })
      a.step = step
      a.last = { learningRate: lr, gradNorm: norm![0]!, step }
      return undefined
    },
    /** The step AdamW took on the GPU in the last batch's backward pass (once). */
    lastStep: (): OptimizerStep | undefined => {
      const last = adam?.last
      if (adam !== undefined) adam.last = undefined
      return last
    },
    /**
     * From now on a batch's last `backward` also takes AdamW's step on the GPU (the moments kept
     * there); undefined: back to reading the gradient out. One micro-batch per update only.
     */
    useAdamW: (o: { readonly config: OptimizerConfig; readonly learningRate: (step: number) => number } | undefined) => {
      if (adam !== undefined) E.release(adam.owner)
      adam = undefined
      if (o === undefined) return
      if (o.config.grad_accum_steps !== 1) throw new Error("AdamW on the GPU takes one micro-batch per update (grad_accum_steps 1)")
      const owner = {}
      adam = E.building(owner, () => {
        const m = E.alloc(total)
        const v = E.alloc(total)
        const partial = E.alloc(NORM_GROUPS + 1)
        const uniforms = E.uniformBuffer(48)
        const module = device.createShaderModule({ code: ADAMW })
        const stage = (entry: "normPartial" | "normTotal" | "update", bindings: ReadonlyArray<[number, GPUBuffer]>, x: number, y = 1): Dispatch => {
          const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: entry } })
          // "auto" layouts hold only the bindings a kernel uses
          const group = device.createBindGroup({
            layout: pipeline.getBindGroupLayout(0),
            entries: bindings.map(([binding, buffer]) => ({ binding, resource: { buffer } }))
          })
          return { pipeline, group, x, y, z: 1, label: `adamw ${entry}` }
        }
        return {
          ...o,
          owner,
          step: 0,
          last: undefined,
          m,
          v,
          uniforms,
          norm: E.view(partial, NORM_GROUPS, 1),
          dispatches: [
            stage("normPartial", [[0, uniforms], [2, grads.buf], [5, partial.buf]], NORM_GROUPS),
            stage("normTotal", [[5, partial.buf]], 1),
            stage("update", [[0, uniforms], [1, params.buf], [2, grads.buf], [3, m.buf], [4, v.buf], [5, partial.buf]], ...spread(Math.ceil(total / 64)))
          ],
          after: new WeakMap<ReadonlyArray<Dispatch>, ReadonlyArray<Dispatch>>()
        }
      })
    },
    /** The parameters and AdamW's moments (zero before its first step, or without it) as they are on the GPU. */
    read: async (): Promise<{ parameters: Float32Array; m: Float32Array; v: Float32Array }> => {
      if (adam === undefined) {
        const [parameters] = await E.run([], { reads: [params] })
        return { parameters: parameters!.slice(), m: new Float32Array(total), v: new Float32Array(total) }
      }
      const [parameters, m, v] = await E.run([], { reads: [params, adam.m, adam.v] })
      return { parameters: parameters!.slice(), m: m!.slice(), v: v!.slice() }
    },
    /** AdamW's step count and moments (flat, parameterSpecs order), a checkpoint's. */
    restoreAdamW: (step: number, m: Float32Array, v: Float32Array) => {
      if (adam === undefined) throw new Error("restoreAdamW before useAdamW")
      adam.step = step
      E.write(adam.m, m)
      E.write(adam.v, v)
    },
    /**
     * Starts decoding a batch: the encoder's pass over the prompts and images; then either `step`,
     * which feeds each row's next input token at position t and returns the next-token logits
     * [rows, V] (the copy head's share included) and the value [rows], or `choosing`, which
     * chooses the tokens on the GPU several steps at a time.
     */
    start: async (prompts: ReadonlyArray<Int32Array>, patches: ReadonlyArray<Float32Array>) => {
      const n = prompts.length
      const B = roundUp(n, 8)
      const P = bucketP(Math.max(...prompts.map((x) => x.length)))
      const G = graph(`sample ${B}×${P}`, () => buildSampling(B, P))
      writeEncoderInputs(G.inputs, prompts, patches, B, P)
      await E.run(G.encoder)
      await profile(`sample ${B}×${P}`, { encoder: G.encoder, step: G.step })
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
         * Decoding with the tokens chosen on the GPU: `modes` [Tmax, rows] a forced id (≥ 0), −1
         * the most likely, −2 a draw at `uniforms` (same layout). Each `next(k)` runs the next k
         * steps in one submission and reads back their choices [k, rows] with their
         * log-probabilities at the temperature; the values are those of the first step.
         */
        choosing: (choice: { readonly modes: ArrayLike<number>; readonly uniforms?: ArrayLike<number> | undefined; readonly temperature: number }) => {
          const Tmax = s.answerTokens
          const table = new Float32Array(2 * Tmax * B + 1)
          for (let t = 0; t < Tmax; t++) {
            for (let i = 0; i < n; i++) {
              table[(t * B + i) * 2] = choice.modes[t * n + i]!
              table[(t * B + i) * 2 + 1] = choice.uniforms?.[t * n + i] ?? 0
            }
          }
          table[2 * Tmax * B] = Math.max(choice.temperature, 1e-6)
          E.write(G.inputs.choice!, table)
          E.write(G.inputs.token!, new Float32Array(B).fill(BOS))
          E.write(G.inputs.t!, Float32Array.of(0))
          let at = 0
          return async (k: number): Promise<{ ids: Int32Array; logProbs: Float32Array; values: Float32Array }> => {
            if (k < 1 || at + k > Tmax) throw new RangeError(`decoding steps ${at}..${at + k} past the answer's ${Tmax} tokens`)
            const rowsRead = E.view(G.chosen, at * 2 * B, k * 2 * B)
            const [chosen, values] = await E.run(G.step, { repeat: k, reads: [rowsRead, G.first] })
            const ids = new Int32Array(k * n)
            const logProbs = new Float32Array(k * n)
            for (let step = 0; step < k; step++) {
              for (let i = 0; i < n; i++) {
                ids[step * n + i] = chosen![(step * B + i) * 2]!
                logProbs[step * n + i] = chosen![(step * B + i) * 2 + 1]!
              }
            }
            at += k
            return { ids, logProbs, values: values!.slice(0, n) }
          }
        }
      }
    },
    destroy: () => {
      if (adam !== undefined) E.release(adam.owner)
      adam = undefined
      for (const g of graphs.values()) E.release(g.owner)
      graphs.clear()
      E.release(shared)
    }
  }
}
