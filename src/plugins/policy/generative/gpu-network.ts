/// <reference types="@webgpu/types" />
/**
 * The generator's network (model.ts) on the engine of gpu-engine.ts: the same parameters, the same
 * arithmetic in single precision, as recorded dispatches — a training graph (teacher-forced
 * forward pass, per-answer log-probability, value and entropy, and the gradient of a weighted sum
 * of them; AdamW's update after it where the learner runs it here) and a sampling graph (the
 * encoder once, then decoding steps over a key–value cache, the copy head's share added on the
 * GPU, the tokens chosen there several steps per submission). Graphs are recorded per batch
 * shape: the batch rounded up to a multiple of 8, the prompt to 64 tokens, the answer to 16
 * (fewer shapes, fewer graphs rebuilt).
 */
import type { OptimizerConfig, OptimizerStep } from "../../../core/optimizer.ts"
import { textSetting } from "../../../core/settings.ts"
import { ADAMW, adamwUniforms, NORM_GROUPS } from "../../optimizer/adamw-gpu.ts"
import { type Dispatch, type Engine, makeEngine, type T } from "./gpu-engine.ts"
import { spread } from "./gpu-kernels.ts"
import { makeRecorder } from "./gpu-layers.ts"
import { buildSampling, buildTraining, type GraphContext, type SamplingGraph, type TrainingGraph } from "./gpu-graphs.ts"
import { type NetworkShape, parameterSpecs, patchCount, patchSize } from "./model.ts"
import { makeInputs } from "./gpu-inputs.ts"
import { BOS } from "./tokenizer.ts"
import { parameterLayout } from "../parameter-layout.ts"

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
  const layout = parameterLayout(parameterSpecs(s))
  const { total } = layout
  const shared = {}
  const { params, grads } = E.building(shared, () => ({ params: E.alloc(total), grads: E.alloc(total) }))
  const p = (name: string): T => {
    const at = layout.offset[name]
    if (at === undefined) throw new Error(`no parameter ${name}`)
    const n = layout.size[name]!
    return { buf: params.buf, off: at, n, g: { buf: grads.buf, off: at, n } }
  }

  const context: GraphContext = { E, shape: s, d, V, N, S, p, recorder: (train) => makeRecorder(E, s, p, train) }

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
    /** Where each parameter lives in the flat arrays `upload`, `read` and `restoreAdamW` take. */
    layout,
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
      const G = graph(`train ${B}×${P}×${T}`, () => buildTraining(context, B, P, T))
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
      const G = graph(`sample ${B}×${P}`, () => buildSampling(context, B, P))
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
