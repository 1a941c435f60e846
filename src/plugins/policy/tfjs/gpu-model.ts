/// <reference types="@webgpu/types" />
import { CONTEXT_SLOTS, type Features, slotCount } from "./features.ts"
import { ADAMW, adamwUniforms, NORM_GROUPS } from "../../optimizer/adamw-gpu.ts"
import { shader, WORKGROUP } from "./gpu-kernels.ts"
import type { OptimizerConfig, OptimizerStep } from "../../../core/optimizer.ts"
import type { Evaluation, LossCoefficients } from "../../../core/policy.ts"
import { type ModelConfig, parameterSpecs } from "./model.ts"

/**
 * The policy's forward pass (model.ts `forward`) and its gradient as a few dozen WGSL kernels on
 * raw WebGPU. tfjs's WebGPU backend spends 100–800 µs of CPU per operation from Node (a uniform
 * buffer, a bind group, often a buffer created for a scalar; measured with bench/gpu-dispatch.ts),
 * and a forward pass is ~130 of them, a training step ~500; here the parameters live in one GPU
 * buffer, every bind group is made once per batch capacity, and a forward pass is 17 dispatches in
 * one submission and one read-back (~5–13 µs per dispatch, 45–65 µs per read-back on an H100).
 * Same arithmetic as the tfjs model in single precision; sums run in another order, so results
 * agree to float rounding (bench/gpu-forward.ts compares them on a GPU machine).
 *
 * The kernels' WGSL is in gpu-kernels.ts; this file is the host side, past 500 lines because it is
 * one closure over the device's buffers, pipelines and bind groups, which the forward pass, the
 * backward pass and AdamW share (split, each part would take a dozen of them from the others).
 */
export interface GpuModel {
  /** Copies the parameters to the GPU (after each optimizer step). */
  readonly upload: (values: ReadonlyMap<string, Float32Array>) => void
  /** Logits of the listed actions, the sentences and the observation descriptions, and values, as `forward` returns them. */
  readonly run: (
    features: ReadonlyArray<Features>
  ) => Promise<{ actions: Float32Array; sentences: Float32Array; observations: Float32Array; values: Float32Array }>
  /**
   * One batch's evaluation (log-probability of each chosen output, value, action entropy) and the
   * gradient of Σ c·logProb + c·value + c·entropy, with the coefficients from the evaluation: every
   * parameter's gradient as a view into one array read back from the GPU.
   */
  readonly gradients: (
    features: ReadonlyArray<Features>,
    choices: ReadonlyArray<{ readonly action: number; readonly instruction: number; readonly observation: number }>,
    options: { readonly thoughtWeight: number; readonly temperature: number },
    coefficients: (evaluation: Evaluation) => LossCoefficients
  ) => Promise<{ gradients: Map<string, Float32Array>; evaluation: Evaluation }>
  /**
   * From now on every `gradients` call also takes an AdamW step on the GPU (moments there, the
   * global norm clipped there) and leaves the gradient there: it returns no gradient arrays, and
   * `lastStep` what the step was. Only for updates of one micro-batch (grad_accum_steps 1);
   * undefined: back to returning gradients.
   */
  readonly useAdamW: (adamw: { readonly config: OptimizerConfig; readonly learningRate: (step: number) => number } | undefined) => void
  /** The step the last `gradients` call took (once), for the optimizer service to report. */
  readonly lastStep: () => OptimizerStep | undefined
  /** The parameters and the AdamW moments (zero before any step) as they are on the GPU, by parameter. */
  readonly read: () => Promise<{ parameters: Map<string, Float32Array>; m: Map<string, Float32Array>; v: Map<string, Float32Array> }>
  /** Sets the AdamW step count and moments (a checkpoint's; parameters it lacks start from zero). */
  readonly restoreAdamW: (step: number, moments: ReadonlyMap<string, { readonly m: Float32Array; readonly v: Float32Array }>) => void
  readonly destroy: () => void
}

/** Float offsets of each parameter in the one parameter buffer. */
const layout = (c: ModelConfig) => {
  const offset: Record<string, number> = {}
  let total = 0
  for (const spec of parameterSpecs(c)) {
    offset[spec.name] = total
    total += spec.shape.reduce((a, b) => a * b, 1)
  }
  return { offset, total }
}

export const makeGpuModel = (device: GPUDevice, config: ModelConfig): GpuModel => {
  const c = config
  const { maxSentences: S, maxActions: C, maxObservations: O, maxCount, imageSide } = c.shape
  const D = c.embedding
  const H = c.hidden
  const PF = c.patchFeatures
  const slots = slotCount(c.shape)
  const np = Math.floor(imageSide / c.patch)
  const patchIn = c.patch * c.patch * 3
  const counts = 4 * (maxCount + 1)
  const ctxIn = CONTEXT_SLOTS * D + counts
  const { offset, total } = layout(c)
  // a kernel that does not compile is an error of the first batch, with the compiler's messages
  // (pushErrorScope before the module, then this once its pipelines exist)
  const built = (module: GPUShaderModule, what: string): Promise<void> =>
    Promise.all([device.popErrorScope(), module.getCompilationInfo()]).then(([error, info]) => {
      const messages = info.messages.filter((m) => m.type === "error").map((m) => `line ${m.lineNum}: ${m.message}`)
      if (error !== null || messages.length > 0) {
        throw new Error(`the ${what} kernels do not build: ${[error?.message ?? "", ...messages].filter((m) => m !== "").join("; ")}`)
      }
    })
  /** A flat array (in `layout` order) as one view per parameter. */
  const split = (flat: Float32Array): Map<string, Float32Array> =>
    new Map(parameterSpecs(c).map((spec) => [spec.name, flat.subarray(offset[spec.name]!, offset[spec.name]! + spec.shape.reduce((a, b) => a * b, 1))]))
  /** Arrays by parameter as one flat array (missing ones zero). */
  const flatten = (arrays: ReadonlyMap<string, Float32Array>): Float32Array<ArrayBuffer> => {
    const flat = new Float32Array(total)
    for (const [name, values] of arrays) {
      const at = offset[name]
      if (at === undefined) throw new Error(`no parameter ${name} in this model`)
      flat.set(values, at)
    }
    return flat
  }
  device.pushErrorScope("validation")
  const module = device.createShaderModule({ code: shader(c, offset) })
  const entries = [
    "bags",
    "context",
    "matmul",
    "sentenceLogits",
    "attend",
    "patches",
    "pool",
    "joint",
    "score",
    "heads",
    "headsBack",
    "valueSeed",
    "reluBack",
    "outer",
    "scoreBack",
    "poolBack",
    "attendBack1",
    "attendBack2",
    "attendBack3",
    "sumBatch",
    "wordsBack",
    "tableBack"
  ] as const
  type Entry = (typeof entries)[number]
  const storageEntry = (binding: number, type: GPUBufferBindingType) => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type } })
  const bindLayout = device.createBindGroupLayout({
    entries: [
      storageEntry(0, "uniform"),
      storageEntry(1, "read-only-storage"),
      storageEntry(2, "read-only-storage"),
      storageEntry(3, "read-only-storage"),
      storageEntry(4, "storage"),
      storageEntry(5, "storage")
    ]
  })
  const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [bindLayout] })
  const pipelines = Object.fromEntries(
    entries.map((e) => [e, device.createComputePipeline({ layout: pipelineLayout, compute: { module, entryPoint: e } })])
  ) as Record<Entry, GPUComputePipeline>
  const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC
  const params = device.createBuffer({ size: total * 4, usage: storage })
  const grads = device.createBuffer({ size: total * 4, usage: storage })
  const gradStaging = device.createBuffer({ size: total * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
  device.pushErrorScope("validation")
  const adamModule = device.createShaderModule({ code: ADAMW })
  const adamPipelines = Object.fromEntries(
    (["normPartial", "normTotal", "update"] as const).map((
      e
    ) => [e, device.createComputePipeline({ layout: "auto", compute: { module: adamModule, entryPoint: e } })])
  ) as Record<"normPartial" | "normTotal" | "update", GPUComputePipeline>
  const adamReady = built(adamModule, "AdamW")
  /** AdamW on the GPU, once asked for: its settings and schedule, step count, moments and the bind groups of its three kernels. */
  let adam:
    | {
      readonly config: OptimizerConfig
      readonly learningRate: (step: number) => number
      step: number
      last: OptimizerStep | undefined
      readonly m: GPUBuffer
      readonly v: GPUBuffer
      readonly partial: GPUBuffer
      readonly uniform: GPUBuffer
      readonly normStaging: GPUBuffer
      readonly groups: Record<"normPartial" | "normTotal" | "update", GPUBindGroup>
    }
    | undefined
  const ready = built(module, "fused model")
  /** Gives AdamW's buffers back (another optimizer takes over, or the model is done). */
  const dropAdam = () => {
    for (const b of adam === undefined ? [] : [adam.m, adam.v, adam.partial, adam.uniform, adam.normStaging]) b.destroy()
    adam = undefined
  }

  interface Step {
    readonly pipeline: GPUComputePipeline
    readonly group: GPUBindGroup
    readonly uniform: GPUBuffer
    readonly shape: (B: number) => number[]
    readonly threads: (B: number) => number
  }
  /** Everything sized by the batch capacity: buffers, the dispatches' uniforms and bind groups. */
  interface Plan {
    readonly capacity: number
    readonly words: number
    readonly ints: GPUBuffer
    readonly floats: GPUBuffer
    readonly x: GPUBuffer
    readonly staging: GPUBuffer
    readonly at: Record<string, number>
    readonly forward: ReadonlyArray<Step>
    readonly heads: ReadonlyArray<Step>
    readonly backward: ReadonlyArray<Step>
    readonly buffers: GPUBuffer[]
  }
  let plan: Plan | undefined
  let shapedFor = -1

  const build = (capacity: number, words: number): Plan => {
    // intermediates, each at a float offset in x
    let top = 0
    const B = capacity
    const sizes: Record<string, number> = {
      words: B * slots * D,
      ctxIn: B * ctxIn,
      h1: B * H,
      query: B * D,
      kq: B * D,
      sentences: B * S,
      attended: B * D,
      pf: B * np * np * PF,
      pooled: B * 2 * PF,
      image: B * D,
      jointIn: B * 4 * D,
      joint: B * H,
      q: 2 * B * D,
      actions: B * C,
      observations: B * O,
      v1: B * H,
      values: B,
      // training: log-softmaxes and the evaluation; d logits (actions then observations: one block), d sentence logits of the head
      logSoftmax: B * (C + S + O + 3),
      dScores: B * (C + O),
      dSentenceHead: B * S,
      dValue: B,
      dV1: B * H,
      dJoint: B * H,
      dJointPre: B * H,
      dq: 2 * B * D,
      dJointIn: B * 4 * D,
      dImage: B * D,
      dPooled: B * 2 * PF,
      dPf: B * np * np * PF,
      attention: 3 * B * S,
      dSentences: B * S * D + B * D,
      dQuery2: B * D,
      dQuery: B * D,
      dH1: B * H,
      dH1Pre: B * H,
      dCtxIn: B * ctxIn,
      dWords: B * slots * D
    }
    const at: Record<string, number> = {}
    for (const [name, n] of Object.entries(sizes)) {
      at[name] = top
      top += n
    }
    const intWords = 4 + Math.ceil((B * imageSide * imageSide * 3) / 4) + B * slots + 1 + 6 * B + words + 4 * words
    const ints = device.createBuffer({ size: intWords * 4, usage: storage })
    const floats = device.createBuffer({ size: (B * counts + 3 * B + 2) * 4, usage: storage })
    const xb = device.createBuffer({ size: top * 4, usage: storage })
    const staging = device.createBuffer({ size: B * (C + S + O + 3) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
    const lists: Record<"forward" | "heads" | "backward", Step[]> = { forward: [], heads: [], backward: [] }
    let list = lists.forward
    const uniforms: GPUBuffer[] = []
    const step = (entry: Entry, shape: (B: number) => number[], threads: (B: number) => number) => {
      const uniform = device.createBuffer({ size: 48, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST })
      uniforms.push(uniform)
      const group = device.createBindGroup({
        layout: bindLayout,
        entries: [uniform, params, ints, floats, xb, grads].map((buffer, binding) => ({ binding, resource: { buffer } }))
      })
      list.push({ pipeline: pipelines[entry], group, uniform, shape, threads })
    }
    // Shape: B, M, N, K, a, w, bias, flags, out, lda, ldc
    // offsets of blocks whose halves depend on the batch size (qa then qo, ...) are functions of it
    type Off = number | ((B: number) => number)
    const v = (o: Off, B: number) => (typeof o === "number" ? o : o(B))
    const mm = (
      input: Off,
      K: number,
      N: number,
      w: string,
      bias: string | undefined,
      relu: boolean,
      out: Off,
      options: { transpose?: boolean; add?: boolean; lda?: number } = {}
    ) =>
      step(
        "matmul",
        (
          B
        ) => [
          B,
          B,
          N,
          K,
          v(input, B),
          offset[w]!,
          bias === undefined ? 0 : offset[bias]!,
          (options.transpose ? 1 : 0) | (bias === undefined ? 0 : 2) | (relu ? 4 : 0) | (options.add ? 8 : 0),
          v(out, B),
          options.lda ?? 0
        ],
        (B) => B * N
      )
    // a weight's gradient from the layer input (rows M(B), lda apart) and the pre-activation gradient (ldc apart)
    const outer = (
      input: number,
      K: number,
      dOut: number,
      N: number,
      w: string,
      bias: string | undefined,
      o: { rows?: (B: number) => number; lda?: number; ldc?: number; patches?: boolean } = {}
    ) =>
      step(
        "outer",
        (B) => [
          B,
          (o.rows ?? ((b: number) => b))(B),
          N,
          K,
          input,
          dOut,
          bias === undefined ? 0 : offset[bias]!,
          (bias === undefined ? 0 : 2) | (o.patches ? 16 : 0),
          offset[w]!,
          o.lda ?? 0,
          o.ldc ?? 0
        ],
        () => (K + 1) * N
      )
    const relu = (dIn: number, y: number, N: number, out: number, o: { lda?: number; add?: number; rows?: (B: number) => number } = {}) =>
      step(
        "reluBack",
        (B) => [B, (o.rows ?? ((b: number) => b))(B), N, 0, dIn, y, o.add ?? 0, o.add === undefined ? 0 : 1, out, o.lda ?? 0],
        (B) => (o.rows ?? ((b: number) => b))(B) * N
      )

    step("bags", (B) => [B, 0, 0, 0, at.words!], (B) => B * slots * D)
    step("context", (B) => [B, 0, 0, 0, at.words!, at.ctxIn!], (B) => B * ctxIn)
    mm(at.ctxIn!, ctxIn, H, "context_w1", "context_b1", true, at.h1!)
    mm(at.h1!, H, D, "context_w2", "context_b2", true, at.query!)
    mm(at.query!, D, D, "attention_keys", undefined, false, at.kq!, { transpose: true })
    step("sentenceLogits", (B) => [B, 0, 0, 0, at.words!, at.kq!, at.sentences!], (B) => B * S)
    step("attend", (B) => [B, 0, 0, 0, at.words!, at.sentences!, at.attended!], (B) => B * D)
    step("patches", (B) => [B, 0, 0, 0, at.pf!], (B) => B * np * np * PF)
    step("pool", (B) => [B, 0, 0, 0, at.pf!, at.pooled!], (B) => B * PF)
    mm(at.pooled!, 2 * PF, D, "image_w", "image_b", true, at.image!)
    step("joint", (B) => [B, 0, 0, at.words!, at.attended!, at.query!, at.image!, 0, at.jointIn!], (B) => B * 4 * D)
    mm(at.jointIn!, 4 * D, H, "joint_w", "joint_b", true, at.joint!)
    mm(at.joint!, H, D, "action_query", undefined, false, at.q!)
    mm(at.joint!, H, D, "observation_query", undefined, false, (B) => at.q! + B * D)
    step("score", (B) => [B, 0, 0, 0, at.words!, at.q!, at.actions!, 0], (B) => B * C)
    step("score", (B) => [B, 0, 0, 0, at.words!, at.q! + B * D, at.observations!, 1], (B) => B * O)
    mm(at.joint!, H, H, "value_w1", "value_b1", true, at.v1!)
    mm(at.v1!, H, 1, "value_w2", "value_b2", false, at.values!)

    list = lists.heads
    step("heads", (B) => [B, 0, 0, at.values!, at.actions!, at.sentences!, at.observations!, 0, at.logSoftmax!], (B) => B)

    list = lists.backward
    step("headsBack", (B) => [B, 0, 0, 0, at.logSoftmax!, at.dSentenceHead!, at.dScores! + B * C, 0, at.dScores!], (B) => B * (C + S + O))
    step("valueSeed", (B) => [B, 0, 0, 0, 0, 0, 0, 0, at.dValue!], (B) => B)
    // value head
    outer(at.v1!, H, at.dValue!, 1, "value_w2", "value_b2")
    mm(at.dValue!, 1, H, "value_w2", undefined, false, at.dV1!, { transpose: true })
    relu(at.dV1!, at.v1!, H, at.dV1!)
    outer(at.joint!, H, at.dV1!, H, "value_w1", "value_b1")
    // candidate heads: d queries (qa, qo one block) and the priors
    step("scoreBack", (B) => [B, 0, 0, 0, at.words!, at.dScores!, 0, 0, at.dq!], (B) => B * D + D)
    step("scoreBack", (B) => [B, 0, 0, 0, at.words!, at.dScores! + B * C, 0, 1, at.dq! + B * D], (B) => B * D + D)
    outer(at.joint!, H, at.dq!, D, "action_query", undefined)
    step("outer", (B) => [B, B, D, H, at.joint!, at.dq! + B * D, 0, 0, offset["observation_query"]!, 0, 0], () => (H + 1) * D)
    // d joint = dV1 · W1ᵀ + dqa · Wqaᵀ + dqo · Wqoᵀ, through its relu
    mm(at.dV1!, H, H, "value_w1", undefined, false, at.dJoint!, { transpose: true })
    mm(at.dq!, D, H, "action_query", undefined, false, at.dJoint!, { transpose: true, add: true })
    step("matmul", (B) => [B, B, H, D, at.dq! + B * D, offset["observation_query"]!, 0, 1 | 8, at.dJoint!, 0], (B) => B * H)
    relu(at.dJoint!, at.joint!, H, at.dJointPre!)
    outer(at.jointIn!, 4 * D, at.dJointPre!, H, "joint_w", "joint_b")
    mm(at.dJointPre!, H, 4 * D, "joint_w", undefined, false, at.dJointIn!, { transpose: true })
    // image: d pooled, d patch features (mean and max), patch weights
    step("reluBack", (B) => [B, B, D, 0, at.dJointIn! + 2 * D, at.image!, 0, 0, at.dImage!, 4 * D], (B) => B * D)
    outer(at.pooled!, 2 * PF, at.dImage!, D, "image_w", "image_b")
    mm(at.dImage!, D, 2 * PF, "image_w", undefined, false, at.dPooled!, { transpose: true })
    step("poolBack", (B) => [B, 0, 0, at.pooled!, at.pf!, at.dPooled!, 0, 0, at.dPf!], (B) => B * np * np * PF)
    outer(0, patchIn, at.dPf!, PF, "patch_w", "patch_b", { rows: (B) => B * np * np, patches: true })
    // attention: d sentence logits (with the instruction head's), d sentences, d keyed query
    step("attendBack1", (B) => [B, 0, 0, at.dJointIn!, at.words!, at.sentences!, 0, 0, at.attention!, 4 * D], (B) => B * S)
    step("attendBack2", (B) => [B, 0, 0, 0, 0, 0, at.dSentenceHead!, 0, at.attention!], (B) => B * S)
    step("attendBack3", (B) => [B, 0, at.dSentences!, at.dJointIn!, at.words!, at.kq!, 0, 0, at.attention!, 4 * D], (B) => B * S * D + B * D)
    step("sumBatch", (B) => [B, B, 0, S, at.dSentences!, 0, 0, 0, offset["sentence_position"]!], () => S * D)
    // keys: kq = query · Kᵀ, so dK = dkqᵀ · query and d query += dkq · K
    step("outer", (B) => [B, B, D, D, at.dSentences! + B * S * D, at.query!, 0, 0, offset["attention_keys"]!, 0, 0], () => (D + 1) * D)
    mm((B) => at.dSentences! + B * S * D, D, D, "attention_keys", undefined, false, at.dQuery2!)
    step("reluBack", (B) => [B, B, D, 0, at.dJointIn! + D, at.query!, at.dQuery2!, 1, at.dQuery!, 4 * D], (B) => B * D)
    outer(at.h1!, H, at.dQuery!, D, "context_w2", "context_b2")
    mm(at.dQuery!, D, H, "context_w2", undefined, false, at.dH1!, { transpose: true })
    relu(at.dH1!, at.h1!, H, at.dH1Pre!)
    outer(at.ctxIn!, ctxIn, at.dH1Pre!, H, "context_w1", "context_b1")
    mm(at.dH1Pre!, H, ctxIn, "context_w1", undefined, false, at.dCtxIn!, { transpose: true })
    // words: every use, through the relu; word bias; the table, row by row
    step("wordsBack", (B) => [B, 0, at.words!, at.dCtxIn!, at.dSentences!, at.dScores!, at.q!, 0, at.dWords!, at.dJointIn!], (B) => B * slots * D)
    step("sumBatch", (B) => [B, B * slots, 0, 1, at.dWords!, 0, 0, 0, offset["word_bias"]!], () => D)
    step("tableBack", (B) => [B, 0, 0, 0, at.dWords!], () => words * D)
    return {
      capacity,
      words,
      ints,
      floats,
      x: xb,
      staging,
      at,
      ...lists,
      buffers: [ints, floats, xb, staging, ...uniforms]
    }
  }

  /** The plan for B samples of these features, the batch's inputs written. */
  const prepare = (
    features: ReadonlyArray<Features>,
    choices?: ReadonlyArray<{ readonly action: number; readonly instruction: number; readonly observation: number }>
  ): Plan => {
    const B = features.length
    const words = features.reduce((n, f) => n + f.offsets[slots]! - f.offsets[0]!, 0)
    if (plan === undefined || plan.capacity < B || plan.words < words) {
      const capacity = Math.max(B, plan?.capacity ?? 0)
      plan?.buffers.forEach((b) => b.destroy())
      plan = build(capacity, Math.max(words, 64 * capacity))
      shapedFor = -1
    }
    const pl = plan
    if (B !== shapedFor) {
      for (const s of [...pl.forward, ...pl.heads, ...pl.backward]) {
        const shape = new Uint32Array(12)
        shape.set(s.shape(B))
        device.queue.writeBuffer(s.uniform, 0, shape)
      }
      shapedFor = B
    }
    const pixels = imageSide * imageSide * 3
    const starts = 4 + Math.ceil((B * pixels) / 4)
    const listed = starts + B * slots + 1
    const chosen = listed + 3 * B
    const rows = chosen + 3 * B
    // the table rows used, each with the bags it occurs in (in word order): the table gradient's rows
    const entriesAt = rows + words
    const ints = new Uint32Array(entriesAt + (choices === undefined ? 0 : 4 * words))
    const bytes = new Uint8Array(ints.buffer, 16, B * pixels)
    const countValues = new Float32Array(B * counts)
    const occurrences = choices === undefined ? undefined : new Map<number, number[]>()
    let w = 0
    features.forEach((f, b) => {
      bytes.set(f.image, b * pixels)
      for (let k = 0; k < slots; k++) {
        ints[starts + b * slots + k] = w
        for (let i = f.offsets[k]!; i < f.offsets[k + 1]!; i++) {
          const row = f.words[i]!
          ints[rows + w++] = row
          if (occurrences !== undefined) {
            const list = occurrences.get(row)
            if (list === undefined) occurrences.set(row, [b * slots + k])
            else list.push(b * slots + k)
          }
        }
      }
      ints[listed + b * 3] = Math.min(S, f.sentences.length)
      ints[listed + b * 3 + 1] = Math.min(C, f.actions.length)
      ints[listed + b * 3 + 2] = Math.min(O, f.observations.length)
      const pick = (k: number) => (k >= 0 ? k : 0xffffffff)
      if (choices !== undefined) {
        ints[chosen + b * 3] = pick(choices[b]!.action)
        ints[chosen + b * 3 + 1] = pick(choices[b]!.instruction)
        ints[chosen + b * 3 + 2] = pick(choices[b]!.observation)
      }
      for (let k = 0; k < counts; k++) countValues[b * counts + k] = f.counts[k]!
    })
    ints[starts + B * slots] = w
    ints[0] = rows
    if (occurrences !== undefined) {
      const occAt = entriesAt + 3 * occurrences.size
      let e = entriesAt
      let o = occAt
      for (const [row, bags] of occurrences) {
        ints[e++] = row
        ints[e++] = o - occAt
        for (const bag of bags) ints[o++] = bag
        ints[e++] = o - occAt
      }
      ints[1] = entriesAt
      ints[2] = occurrences.size
      ints[3] = occAt
      device.queue.writeBuffer(pl.ints, 0, ints, 0, o)
    } else device.queue.writeBuffer(pl.ints, 0, ints)
    device.queue.writeBuffer(pl.floats, 0, countValues)
    return pl
  }

  const dispatch = (encoder: GPUCommandEncoder, steps: ReadonlyArray<Step>, B: number) => {
    const pass = encoder.beginComputePass()
    for (const s of steps) {
      const groups = Math.ceil(s.threads(B) / WORKGROUP)
      pass.setPipeline(s.pipeline)
      pass.setBindGroup(0, s.group)
      pass.dispatchWorkgroups(Math.min(groups, 65535), Math.ceil(groups / 65535))
    }
    pass.end()
  }

  const read = async (buffer: GPUBuffer, floats: number): Promise<Float32Array> => {
    await buffer.mapAsync(GPUMapMode.READ, 0, floats * 4)
    const out = new Float32Array(buffer.getMappedRange(0, floats * 4).slice(0))
    buffer.unmap()
    return out
  }

  // one batch at a time on these buffers (acting and training may be asked concurrently)
  let queue: Promise<unknown> = Promise.resolve()
  const serial = <A>(work: () => Promise<A>): Promise<A> => {
    const next = queue.then(work, work)
    queue = next.catch(() => undefined)
    return next
  }

  const run: GpuModel["run"] = (features) =>
    serial(async () => {
      await ready
      const B = features.length
      const pl = prepare(features)
      const encoder = device.createCommandEncoder()
      dispatch(encoder, pl.forward, B)
      let n = 0
      for (
        const [from, size] of [
          [pl.at.actions!, B * C],
          [pl.at.sentences!, B * S],
          [pl.at.observations!, B * O],
          [pl.at.values!, B]
        ] as const
      ) {
        encoder.copyBufferToBuffer(pl.x, from * 4, pl.staging, n * 4, size * 4)
        n += size
      }
      device.queue.submit([encoder.finish()])
      const all = await read(pl.staging, n)
      return {
        actions: all.subarray(0, B * C),
        sentences: all.subarray(B * C, B * (C + S)),
        observations: all.subarray(B * (C + S), B * (C + S + O)),
        values: all.subarray(B * (C + S + O), B * (C + S + O + 1))
      }
    })

  const gradients: GpuModel["gradients"] = (features, choices, options, coefficients) =>
    serial(async () => {
      await Promise.all([ready, adamReady])
      const B = features.length
      const pl = prepare(features, choices)
      device.queue.writeBuffer(pl.floats, (B * counts + 3 * B) * 4, new Float32Array([Math.max(options.temperature, 1e-6), options.thoughtWeight]))
      let encoder = device.createCommandEncoder()
      dispatch(encoder, [...pl.forward, ...pl.heads], B)
      const evalAt = pl.at.logSoftmax! + B * (C + S + O)
      encoder.copyBufferToBuffer(pl.x, evalAt * 4, pl.staging, 0, 3 * B * 4)
      device.queue.submit([encoder.finish()])
      const ev = await read(pl.staging, 3 * B)
      const evaluation: Evaluation = {
        logProbs: Array.from({ length: B }, (_, b) => ev[3 * b]!),
        values: Array.from({ length: B }, (_, b) => ev[3 * b + 1]!),
        entropies: Array.from({ length: B }, (_, b) => ev[3 * b + 2]!)
      }
      const k = coefficients(evaluation)
      const coef = new Float32Array(3 * B)
      for (let b = 0; b < B; b++) {
        coef[3 * b] = k.logProb[b]!
        coef[3 * b + 1] = k.value[b]!
        coef[3 * b + 2] = k.entropy[b]!
      }
      device.queue.writeBuffer(pl.floats, B * counts * 4, coef)
      encoder = device.createCommandEncoder()
      encoder.clearBuffer(grads)
      dispatch(encoder, pl.backward, B)
      if (adam !== undefined) {
        // the update, here, at the learning rate the optimizer's own schedule gives this step
        const o = adam.config
        const step = adam.step + 1
        const lr = adam.learningRate(step - 1)
        device.queue.writeBuffer(adam.uniform, 0, adamwUniforms(total, o, step, lr))
        const pass = encoder.beginComputePass()
        pass.setPipeline(adamPipelines.normPartial)
        pass.setBindGroup(0, adam.groups.normPartial)
        pass.dispatchWorkgroups(NORM_GROUPS)
        pass.setPipeline(adamPipelines.normTotal)
        pass.setBindGroup(0, adam.groups.normTotal)
        pass.dispatchWorkgroups(1)
        const groups = Math.ceil(total / 64)
        pass.setPipeline(adamPipelines.update)
        pass.setBindGroup(0, adam.groups.update)
        pass.dispatchWorkgroups(Math.min(groups, 65535), Math.ceil(groups / 65535))
        pass.end()
        encoder.copyBufferToBuffer(adam.partial, NORM_GROUPS * 4, adam.normStaging, 0, 4)
        device.queue.submit([encoder.finish()])
        const norm = await read(adam.normStaging, 1)
        adam.step = step
        adam.last = { learningRate: lr, gradNorm: norm[0]!, step }
        return { gradients: new Map<string, Float32Array>(), evaluation }
      }
      encoder.copyBufferToBuffer(grads, 0, gradStaging, 0, total * 4)
      device.queue.submit([encoder.finish()])
      return { gradients: split(await read(gradStaging, total)), evaluation }
    })

  return {
    upload: (values) => device.queue.writeBuffer(params, 0, flatten(values)),
    run,
    gradients,
    useAdamW: (adamw) => {
      dropAdam()
      // undefined: back to returning gradients (another optimizer takes them)
      if (adamw === undefined) return
      const { config, learningRate } = adamw
      if (config.grad_accum_steps !== 1) throw new Error("AdamW on the GPU takes one micro-batch per update (grad_accum_steps 1)")
      const buffer = (size: number, usage: number) => device.createBuffer({ size, usage })
      const m = buffer(total * 4, storage)
      const v = buffer(total * 4, storage)
      const partial = buffer((NORM_GROUPS + 1) * 4, storage)
      const uniform = buffer(48, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST)
      const normStaging = buffer(4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST)
      const bind = (entry: "normPartial" | "normTotal" | "update") =>
        device.createBindGroup({
          layout: adamPipelines[entry].getBindGroupLayout(0),
          // "auto" layouts hold only the bindings a kernel uses
          entries: (entry === "normTotal"
            ? [[5, partial]]
            : entry === "normPartial"
            ? [[0, uniform], [2, grads], [5, partial]]
            : [[0, uniform], [1, params], [2, grads], [3, m], [4, v], [5, partial]]).map(
              ([binding, b]) => ({ binding: binding as number, resource: { buffer: b as GPUBuffer } })
            )
        })
      adam = {
        config,
        learningRate,
        step: 0,
        last: undefined,
        m,
        v,
        partial,
        uniform,
        normStaging,
        groups: { normPartial: bind("normPartial"), normTotal: bind("normTotal"), update: bind("update") }
      }
    },
    lastStep: () => {
      const last = adam?.last
      if (adam !== undefined) adam.last = undefined
      return last
    },
    read: () =>
      serial(async () => {
        await Promise.all([ready, adamReady])
        const staging = device.createBuffer({ size: 3 * total * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
        const encoder = device.createCommandEncoder()
        encoder.copyBufferToBuffer(params, 0, staging, 0, total * 4)
        if (adam !== undefined) {
          encoder.copyBufferToBuffer(adam.m, 0, staging, total * 4, total * 4)
          encoder.copyBufferToBuffer(adam.v, 0, staging, 2 * total * 4, total * 4)
        }
        device.queue.submit([encoder.finish()])
        const all = await read(staging, 3 * total)
        staging.destroy()
        return { parameters: split(all.subarray(0, total)), m: split(all.subarray(total, 2 * total)), v: split(all.subarray(2 * total)) }
      }),
    restoreAdamW: (step, moments) => {
      if (adam === undefined) throw new Error("restoreAdamW before useAdamW")
      adam.step = step
      adam.last = undefined
      device.queue.writeBuffer(adam.m, 0, flatten(new Map([...moments].map(([name, mo]) => [name, mo.m]))))
      device.queue.writeBuffer(adam.v, 0, flatten(new Map([...moments].map(([name, mo]) => [name, mo.v]))))
    },
    destroy: () => {
      plan?.buffers.forEach((b) => b.destroy())
      dropAdam()
      for (const b of [params, grads, gradStaging]) b.destroy()
    }
  }
}
