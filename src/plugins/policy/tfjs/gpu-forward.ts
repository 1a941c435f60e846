/// <reference types="@webgpu/types" />
import { CONTEXT_SLOTS, slotCount, type Features } from "./features.ts"
import { parameterSpecs, type ModelConfig } from "./model.ts"

/**
 * The policy's forward pass (model.ts `forward`) as a handful of WGSL kernels on raw WebGPU, for
 * acting on a GPU. tfjs's WebGPU backend spends 100–800 µs of CPU per operation from Node (a
 * uniform buffer, a bind group, often a buffer created for a scalar; measured with
 * bench/gpu-dispatch.ts), and a forward pass is ~130 of them; here the parameters live in one
 * GPU buffer, every bind group is made once per batch capacity, and a batch is 17 dispatches in
 * one submission and one read-back (~5–13 µs per dispatch, 45–65 µs per read-back on an H100).
 * Same arithmetic as the tfjs model in single precision; sums run in another order, so outputs
 * agree to float rounding (scripts/gpu/check-forward.ts compares them on a GPU machine).
 */
export interface GpuForward {
  /** Copies the parameters to the GPU (after each optimizer step). */
  readonly upload: (values: ReadonlyMap<string, Float32Array>) => void
  /** Logits of the listed actions, the sentences and the observation descriptions, and values, as `forward` returns them. */
  readonly run: (features: ReadonlyArray<Features>) => Promise<{ actions: Float32Array; sentences: Float32Array; observations: Float32Array; values: Float32Array }>
  readonly destroy: () => void
}

const WORKGROUP = 64
const NEG = -1e9

/** WGSL for every kernel, the model's sizes and the parameters' offsets baked in as constants. */
const shader = (c: ModelConfig, offset: Record<string, number>): string => {
  const { maxSentences: S, maxActions: C, maxObservations: O, maxCount, imageSide } = c.shape
  const D = c.embedding
  const slots = slotCount(c.shape)
  const n = Math.floor(imageSide / c.patch)
  const P = c.patch
  const f = (x: number) => (Number.isInteger(x) ? `${x}.0` : `${x}`)
  const o = (name: string) => `${offset[name]}u`
  return /* wgsl */ `
const D = ${D}u; const SLOTS = ${slots}u; const S = ${S}u; const C = ${C}u; const O = ${O}u;
const CTX_IN = ${CONTEXT_SLOTS * D + 4 * (maxCount + 1)}u; const COUNTS = ${4 * (maxCount + 1)}u;
const SIDE = ${imageSide}u; const PATCH = ${P}u; const NP = ${n}u; const PF = ${c.patchFeatures}u;
const NEG = ${f(NEG)};

struct Shape { B: u32, M: u32, N: u32, K: u32, a: u32, w: u32, bias: u32, flags: u32, out: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> u: Shape;
@group(0) @binding(1) var<storage, read> p: array<f32>;
@group(0) @binding(2) var<storage, read> ints: array<u32>;
@group(0) @binding(3) var<storage, read> floats: array<f32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;

fn flat(id: vec3u) -> u32 { return id.x + id.y * 65535u * ${WORKGROUP}u; }

// ints: [B × SIDE² × 3 pixels, 4 bytes a word | B×SLOTS+1 word starts | B × 3 listed counts
// (sentences, actions, observations) | words (table rows)]; floats: B × COUNTS one-hot counts
fn startsAt() -> u32 { return (u.B * SIDE * SIDE * 3u + 3u) / 4u; }
fn wordsAt() -> u32 { return startsAt() + u.B * SLOTS + 1u + u.B * 3u; }
fn listed(b: u32, part: u32) -> u32 { return ints[startsAt() + u.B * SLOTS + 1u + b * 3u + part]; }

// x: intermediate tensors at offsets fixed per batch capacity, passed in Shape.a / w / bias

// words[b, k, :] = relu(Σ table[row] / √count + word_bias)
@compute @workgroup_size(${WORKGROUP}) fn bags(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= u.B * SLOTS * D) { return; }
  let bag = i / D; let d = i % D;
  let start = ints[startsAt() + bag]; let end = ints[startsAt() + bag + 1u];
  let scale = 1.0 / sqrt(f32(end - start));
  var sum = 0.0;
  for (var k = start; k < end; k++) { sum += p[${o("word_embedding")} + ints[wordsAt() + k] * D + d] * scale; }
  x[u.a + i] = max(sum + p[${o("word_bias")} + d], 0.0);
}

// the context MLP's input: the 4 context slots, then the one-hot counts
@compute @workgroup_size(${WORKGROUP}) fn context(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= u.B * CTX_IN) { return; }
  let b = i / CTX_IN; let j = i % CTX_IN;
  if (j < ${CONTEXT_SLOTS}u * D) { x[u.w + i] = x[u.a + (b * SLOTS + SLOTS - ${CONTEXT_SLOTS}u) * D + j]; }
  else { x[u.w + i] = floats[b * COUNTS + j - ${CONTEXT_SLOTS}u * D]; }
}

// out[m, n] = Σ_k in[m, k] · W[k, n] (W[n, k] with flag 1) + bias[n] (flag 2), relu (flag 4)
@compute @workgroup_size(${WORKGROUP}) fn matmul(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= u.M * u.N) { return; }
  let m = i / u.N; let col = i % u.N;
  var sum = 0.0;
  if ((u.flags & 1u) != 0u) {
    for (var k = 0u; k < u.K; k++) { sum += x[u.a + m * u.K + k] * p[u.w + col * u.K + k]; }
  } else {
    for (var k = 0u; k < u.K; k++) { sum += x[u.a + m * u.K + k] * p[u.w + k * u.N + col]; }
  }
  if ((u.flags & 2u) != 0u) { sum += p[u.bias + col]; }
  if ((u.flags & 4u) != 0u) { sum = max(sum, 0.0); }
  x[u.out + i] = sum;
}

// sentence logits: (sentence + position) · keyed query / √D, masked
@compute @workgroup_size(${WORKGROUP}) fn sentenceLogits(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= u.B * S) { return; }
  let b = i / S; let s = i % S;
  var sum = 0.0;
  for (var d = 0u; d < D; d++) { sum += (x[u.a + (b * SLOTS + s) * D + d] + p[${o("sentence_position")} + s * D + d]) * x[u.w + b * D + d]; }
  var mask = 0.0;
  if (s >= listed(b, 0u)) { mask = NEG; }
  x[u.bias + i] = sum / ${f(Math.sqrt(D))} + mask;
}

// attended[b, d] = Σ_s softmax(logits)[s] · (sentence + position)[s, d]
@compute @workgroup_size(${WORKGROUP}) fn attend(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= u.B * D) { return; }
  let b = i / D; let d = i % D;
  var top = -3.4e38;
  for (var s = 0u; s < S; s++) { top = max(top, x[u.w + b * S + s]); }
  var total = 0.0;
  for (var s = 0u; s < S; s++) { total += exp(x[u.w + b * S + s] - top); }
  var sum = 0.0;
  for (var s = 0u; s < S; s++) {
    sum += (x[u.a + (b * SLOTS + s) * D + d] + p[${o("sentence_position")} + s * D + d]) * (exp(x[u.w + b * S + s] - top) / total);
  }
  x[u.bias + i] = sum;
}

fn pixel(b: u32, y: u32, xx: u32, ch: u32) -> f32 {
  let byte = (b * SIDE * SIDE * 3u) + (y * SIDE + xx) * 3u + ch;
  let word = ints[byte / 4u];
  return f32((word >> ((byte % 4u) * 8u)) & 255u) / 255.0 - 0.5;
}

// patch features: relu(patch pixels · patch_w + patch_b), patches of PATCH² pixels in a NP×NP grid
@compute @workgroup_size(${WORKGROUP}) fn patches(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= u.B * NP * NP * PF) { return; }
  let row = i / PF; let col = i % PF;
  let b = row / (NP * NP); let py = (row / NP) % NP; let px = row % NP;
  var sum = 0.0;
  for (var k = 0u; k < PATCH * PATCH * 3u; k++) {
    let dy = k / (PATCH * 3u); let dx = (k / 3u) % PATCH; let ch = k % 3u;
    sum += pixel(b, py * PATCH + dy, px * PATCH + dx, ch) * p[${o("patch_w")} + k * PF + col];
  }
  x[u.a + i] = max(sum + p[${o("patch_b")} + col], 0.0);
}

// pooled[b] = [mean over patches | max over patches]
@compute @workgroup_size(${WORKGROUP}) fn pool(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= u.B * PF) { return; }
  let b = i / PF; let col = i % PF;
  var sum = 0.0; var top = -3.4e38;
  for (var q = 0u; q < NP * NP; q++) { let v = x[u.a + (b * NP * NP + q) * PF + col]; sum += v; top = max(top, v); }
  x[u.w + b * 2u * PF + col] = sum / f32(NP * NP);
  x[u.w + b * 2u * PF + PF + col] = top;
}

// the joint state's input: [attended | query | image | current observation line]
@compute @workgroup_size(${WORKGROUP}) fn joint(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= u.B * 4u * D) { return; }
  let b = i / (4u * D); let j = i % (4u * D); let d = j % D;
  // Shape.a: attended, .w: query, .bias: image, .K: words
  var v = 0.0;
  switch (j / D) {
    case 0u: { v = x[u.a + b * D + d]; }
    case 1u: { v = x[u.w + b * D + d]; }
    case 2u: { v = x[u.bias + b * D + d]; }
    default: { v = x[u.K + (b * SLOTS + SLOTS - ${CONTEXT_SLOTS}u) * D + d]; }
  }
  x[u.out + i] = v;
}

// candidate logits: candidate · query + candidate · prior, masked (flags: 0 actions, 1 observations)
@compute @workgroup_size(${WORKGROUP}) fn score(@builtin(global_invocation_id) id: vec3u) {
  let count = select(C, O, u.flags == 1u);
  let first = select(S, S + C, u.flags == 1u);
  let prior = select(${o("action_prior")}, ${o("observation_prior")}, u.flags == 1u);
  let i = flat(id);
  if (i >= u.B * count) { return; }
  let b = i / count; let k = i % count;
  var dt = 0.0; var pr = 0.0;
  for (var d = 0u; d < D; d++) {
    let cand = x[u.a + (b * SLOTS + first + k) * D + d];
    dt += cand * x[u.w + b * D + d];
    pr += cand * p[prior + d];
  }
  var mask = 0.0;
  if (k >= listed(b, 1u + u.flags)) { mask = NEG; }
  x[u.bias + i] = dt + pr + mask;
}
`
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

export const makeGpuForward = (device: GPUDevice, config: ModelConfig): GpuForward => {
  const c = config
  const { maxSentences: S, maxActions: C, maxObservations: O, maxCount, imageSide } = c.shape
  const D = c.embedding
  const H = c.hidden
  const PF = c.patchFeatures
  const slots = slotCount(c.shape)
  const np = Math.floor(imageSide / c.patch)
  const counts = 4 * (maxCount + 1)
  const ctxIn = CONTEXT_SLOTS * D + counts
  const { offset, total } = layout(c)
  device.pushErrorScope("validation")
  const module = device.createShaderModule({ code: shader(c, offset) })
  const entries = ["bags", "context", "matmul", "sentenceLogits", "attend", "patches", "pool", "joint", "score"] as const
  const bindLayout = device.createBindGroupLayout({
    entries: [
      { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform" } },
      { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: "read-only-storage" } },
      { binding: 2, visibility: GPUShaderStage.COMPUTE, buffer: { type: "read-only-storage" } },
      { binding: 3, visibility: GPUShaderStage.COMPUTE, buffer: { type: "read-only-storage" } },
      { binding: 4, visibility: GPUShaderStage.COMPUTE, buffer: { type: "storage" } }
    ]
  })
  const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [bindLayout] })
  const pipelines = Object.fromEntries(entries.map((e) => [e, device.createComputePipeline({ layout: pipelineLayout, compute: { module, entryPoint: e } })])) as Record<
    (typeof entries)[number],
    GPUComputePipeline
  >
  const params = device.createBuffer({ size: total * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST })
  // a kernel that does not compile is an error of the first batch, with the compiler's messages
  const ready = Promise.all([device.popErrorScope(), module.getCompilationInfo()]).then(([error, info]) => {
    const messages = info.messages.filter((m) => m.type === "error").map((m) => `line ${m.lineNum}: ${m.message}`)
    if (error !== null || messages.length > 0) throw new Error(`the fused forward kernels do not build: ${[error?.message ?? "", ...messages].filter((m) => m !== "").join("; ")}`)
  })

  /** Everything sized by the batch capacity: buffers, the dispatches' uniforms and bind groups. */
  interface Plan {
    readonly capacity: number
    readonly ints: GPUBuffer
    readonly floats: GPUBuffer
    readonly x: GPUBuffer
    readonly staging: GPUBuffer
    readonly out: { readonly actions: number; readonly sentences: number; readonly observations: number; readonly values: number }
    readonly steps: ReadonlyArray<{ pipeline: GPUComputePipeline; group: GPUBindGroup; uniform: GPUBuffer; shape: (B: number) => number[]; threads: (B: number) => number }>
    readonly intWords: number
    readonly buffers: GPUBuffer[]
  }
  let plan: Plan | undefined
  let wordCapacity = 0

  const build = (capacity: number, words: number): Plan => {
    // intermediates, each at a float offset in x
    let at = 0
    const alloc = (n: number) => {
      const here = at
      at += n
      return here
    }
    const B = capacity
    const x = {
      words: alloc(B * slots * D),
      ctxIn: alloc(B * ctxIn),
      h1: alloc(B * H),
      query: alloc(B * D),
      kq: alloc(B * D),
      sentences: alloc(B * S),
      attended: alloc(B * D),
      pf: alloc(B * np * np * PF),
      pooled: alloc(B * 2 * PF),
      image: alloc(B * D),
      jointIn: alloc(B * 4 * D),
      joint: alloc(B * H),
      qa: alloc(B * D),
      qo: alloc(B * D),
      actions: alloc(B * C),
      observations: alloc(B * O),
      v1: alloc(B * H),
      values: alloc(B)
    }
    const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC
    const intWords = Math.ceil((B * imageSide * imageSide * 3) / 4) + B * slots + 1 + B * 3 + words
    const ints = device.createBuffer({ size: intWords * 4, usage: storage })
    const floats = device.createBuffer({ size: B * counts * 4, usage: storage })
    const xb = device.createBuffer({ size: at * 4, usage: storage })
    const staging = device.createBuffer({ size: B * (C + S + O + 1) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
    const steps: Array<Plan["steps"][number]> = []
    const step = (entry: (typeof entries)[number], shape: (B: number) => number[], threads: (B: number) => number) => {
      const uniform = device.createBuffer({ size: 48, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST })
      const group = device.createBindGroup({
        layout: bindLayout,
        entries: [uniform, params, ints, floats, xb].map((buffer, binding) => ({ binding, resource: { buffer } }))
      })
      steps.push({ pipeline: pipelines[entry], group, uniform, shape, threads })
    }
    // Shape: B, M, N, K, a, w, bias, flags, out (then padding)
    const mm = (input: number, M: (B: number) => number, K: number, N: number, w: string, bias: string | undefined, relu: boolean, out: number, transpose = false) =>
      step("matmul", (B) => [B, M(B), N, K, input, offset[w]!, bias === undefined ? 0 : offset[bias]!, (transpose ? 1 : 0) | (bias === undefined ? 0 : 2) | (relu ? 4 : 0), out], (B) => M(B) * N)
    step("bags", (B) => [B, 0, 0, 0, x.words, 0, 0, 0], (B) => B * slots * D)
    step("context", (B) => [B, 0, 0, 0, x.words, x.ctxIn, 0, 0], (B) => B * ctxIn)
    mm(x.ctxIn, (B) => B, ctxIn, H, "context_w1", "context_b1", true, x.h1)
    mm(x.h1, (B) => B, H, D, "context_w2", "context_b2", true, x.query)
    mm(x.query, (B) => B, D, D, "attention_keys", undefined, false, x.kq, true)
    step("sentenceLogits", (B) => [B, 0, 0, 0, x.words, x.kq, x.sentences, 0], (B) => B * S)
    step("attend", (B) => [B, 0, 0, 0, x.words, x.sentences, x.attended, 0], (B) => B * D)
    step("patches", (B) => [B, 0, 0, 0, x.pf, 0, 0, 0], (B) => B * np * np * PF)
    step("pool", (B) => [B, 0, 0, 0, x.pf, x.pooled, 0, 0], (B) => B * PF)
    mm(x.pooled, (B) => B, 2 * PF, D, "image_w", "image_b", true, x.image)
    step("joint", (B) => [B, 0, 0, x.words, x.attended, x.query, x.image, 0, x.jointIn], (B) => B * 4 * D)
    mm(x.jointIn, (B) => B, 4 * D, H, "joint_w", "joint_b", true, x.joint)
    mm(x.joint, (B) => B, H, D, "action_query", undefined, false, x.qa)
    mm(x.joint, (B) => B, H, D, "observation_query", undefined, false, x.qo)
    step("score", (B) => [B, 0, 0, 0, x.words, x.qa, x.actions, 0], (B) => B * C)
    step("score", (B) => [B, 0, 0, 0, x.words, x.qo, x.observations, 1], (B) => B * O)
    mm(x.joint, (B) => B, H, H, "value_w1", "value_b1", true, x.v1)
    mm(x.v1, (B) => B, H, 1, "value_w2", "value_b2", false, x.values)
    return {
      capacity,
      ints,
      floats,
      x: xb,
      staging,
      out: x,
      steps,
      intWords,
      buffers: [ints, floats, xb, staging, ...steps.map((s) => s.uniform)]
    }
  }

  let lastB = -1
  const run: GpuForward["run"] = async (features) => {
    await ready
    const B = features.length
    const words = features.reduce((n, f) => n + f.offsets[slots]! - f.offsets[0]!, 0)
    if (plan === undefined || plan.capacity < B || wordCapacity < words) {
      plan?.buffers.forEach((b) => b.destroy())
      wordCapacity = Math.max(words, 64 * Math.max(B, plan?.capacity ?? 0))
      plan = build(Math.max(B, plan?.capacity ?? 0), wordCapacity)
      lastB = -1
    }
    const pl = plan
    if (B !== lastB) {
      for (const s of pl.steps) {
        const shape = new Uint32Array(12)
        shape.set(s.shape(B))
        device.queue.writeBuffer(s.uniform, 0, shape)
      }
      lastB = B
    }
    // ints: the pixels (packed bytes), word starts per bag, listed counts, table rows
    const pixels = imageSide * imageSide * 3
    const imageWords = Math.ceil((B * pixels) / 4)
    const ints = new Uint32Array(imageWords + B * slots + 1 + B * 3 + words)
    const bytes = new Uint8Array(ints.buffer, 0, B * pixels)
    const starts = imageWords
    const listed = starts + B * slots + 1
    const rows = listed + B * 3
    const countValues = new Float32Array(B * counts)
    let w = 0
    features.forEach((f, b) => {
      bytes.set(f.image, b * pixels)
      for (let k = 0; k < slots; k++) {
        ints[starts + b * slots + k] = w
        for (let i = f.offsets[k]!; i < f.offsets[k + 1]!; i++) ints[rows + w++] = f.words[i]!
      }
      ints[listed + b * 3] = Math.min(S, f.sentences.length)
      ints[listed + b * 3 + 1] = Math.min(C, f.actions.length)
      ints[listed + b * 3 + 2] = Math.min(O, f.observations.length)
      for (let k = 0; k < counts; k++) countValues[b * counts + k] = f.counts[k]!
    })
    ints[starts + B * slots] = w
    device.queue.writeBuffer(pl.ints, 0, ints)
    device.queue.writeBuffer(pl.floats, 0, countValues)
    const encoder = device.createCommandEncoder()
    const pass = encoder.beginComputePass()
    for (const s of pl.steps) {
      const groups = Math.ceil(s.threads(B) / WORKGROUP)
      pass.setPipeline(s.pipeline)
      pass.setBindGroup(0, s.group)
      pass.dispatchWorkgroups(Math.min(groups, 65535), Math.ceil(groups / 65535))
    }
    pass.end()
    const o = pl.out
    let at = 0
    for (const [from, n] of [
      [o.actions, B * C],
      [o.sentences, B * S],
      [o.observations, B * O],
      [o.values, B]
    ] as const) {
      encoder.copyBufferToBuffer(pl.x, from * 4, pl.staging, at * 4, n * 4)
      at += n
    }
    device.queue.submit([encoder.finish()])
    await pl.staging.mapAsync(GPUMapMode.READ, 0, at * 4)
    const all = new Float32Array(pl.staging.getMappedRange(0, at * 4).slice(0))
    pl.staging.unmap()
    return {
      actions: all.subarray(0, B * C),
      sentences: all.subarray(B * C, B * (C + S)),
      observations: all.subarray(B * (C + S), B * (C + S + O)),
      values: all.subarray(B * (C + S + O), B * (C + S + O + 1))
    }
  }

  return {
    upload: (values) => {
      const flat = new Float32Array(total)
      for (const [name, at] of Object.entries(offset)) flat.set(values.get(name)!, at)
      device.queue.writeBuffer(params, 0, flat)
    },
    run,
    destroy: () => {
      plan?.buffers.forEach((b) => b.destroy())
      params.destroy()
    }
  }
}
