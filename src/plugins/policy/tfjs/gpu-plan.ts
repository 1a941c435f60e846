/// <reference types="@webgpu/types" />
import { CONTEXT_SLOTS, slotCount } from "./features.ts"
import type { ModelConfig } from "./model.ts"

/**
 * The fused model's plan for a batch capacity (see gpu-model.ts): where each intermediate lives
 * in one buffer, and the forward, heads and backward passes as lists of kernel dispatches, each
 * with its uniform and bind group made once. The kernels' WGSL is in gpu-kernels.ts.
 */

/** The kernels' entry points. */
export const PLAN_ENTRIES = [
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
export type PlanEntry = (typeof PLAN_ENTRIES)[number]

/**
 * How the fused model's buffers are used: bound as storage, written and read back (read when
 * called: WebGPU's globals exist only once a WebGPU backend has loaded).
 */
export const storageUsage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC

/** What a plan is built from: the device and the model's buffers, pipelines and parameter offsets. */
export interface PlanContext {
  readonly device: GPUDevice
  readonly config: ModelConfig
  readonly offset: Readonly<Record<string, number>>
  readonly pipelines: Readonly<Record<PlanEntry, GPUComputePipeline>>
  readonly bindLayout: GPUBindGroupLayout
  readonly params: GPUBuffer
  readonly grads: GPUBuffer
}

export interface PlanStep {
  readonly pipeline: GPUComputePipeline
  readonly group: GPUBindGroup
  readonly uniform: GPUBuffer
  readonly shape: (B: number) => number[]
  readonly threads: (B: number) => number
}
/** Everything sized by the batch capacity: buffers, the dispatches' uniforms and bind groups. */
export interface Plan {
  readonly capacity: number
  readonly words: number
  readonly ints: GPUBuffer
  readonly floats: GPUBuffer
  readonly x: GPUBuffer
  readonly staging: GPUBuffer
  readonly at: Record<string, number>
  readonly forward: ReadonlyArray<PlanStep>
  readonly heads: ReadonlyArray<PlanStep>
  readonly backward: ReadonlyArray<PlanStep>
  readonly buffers: GPUBuffer[]
}

export const buildPlan = (context: PlanContext, capacity: number, words: number): Plan => {
  const { device, config: c, offset, pipelines, bindLayout, params, grads } = context
  const { maxSentences: S, maxActions: C, maxObservations: O, maxCount, imageSide } = c.shape
  const D = c.embedding
  const H = c.hidden
  const PF = c.patchFeatures
  const slots = slotCount(c.shape)
  const np = Math.floor(imageSide / c.patch)
  const patchIn = c.patch * c.patch * 3
  const counts = 4 * (maxCount + 1)
  const ctxIn = CONTEXT_SLOTS * D + counts
  const storage = storageUsage()
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
  const lists: Record<"forward" | "heads" | "backward", PlanStep[]> = { forward: [], heads: [], backward: [] }
  let list = lists.forward
  const uniforms: GPUBuffer[] = []
  const step = (entry: PlanEntry, shape: (B: number) => number[], threads: (B: number) => number) => {
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
