/// <reference types="@webgpu/types" />
import { CONTEXT_SLOTS, type Features, slotCount } from "./features.ts"
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

const WORKGROUP = 64
const NORM_GROUPS = 256

/**
 * AdamW over the flat parameter buffer, as plugins/optimizer/adamw.ts computes it per element
 * (in single precision): the gradient's global norm in two passes (NORM_GROUPS partial sums of
 * squares, then their sum), then every element's update with the gradient clipped by it.
 */
const ADAMW = /* wgsl */ `
struct A { n: u32, lr: f32, b1: f32, b2: f32, c1: f32, c2: f32, eps: f32, wd: f32, maxNorm: f32, p0: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<uniform> a: A;
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read_write> partial: array<f32>;
var<workgroup> sums: array<f32, 256>;

@compute @workgroup_size(256) fn normPartial(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  var sum = 0.0;
  for (var i = wid.x * 256u + lid.x; i < a.n; i += ${NORM_GROUPS}u * 256u) { sum += g[i] * g[i]; }
  sums[lid.x] = sum;
  workgroupBarrier();
  for (var half = 128u; half > 0u; half /= 2u) {
    if (lid.x < half) { sums[lid.x] += sums[lid.x + half]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { partial[wid.x] = sums[0]; }
}

@compute @workgroup_size(256) fn normTotal(@builtin(local_invocation_id) lid: vec3u) {
  sums[lid.x] = partial[lid.x];
  workgroupBarrier();
  for (var half = 128u; half > 0u; half /= 2u) {
    if (lid.x < half) { sums[lid.x] += sums[lid.x + half]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { partial[${NORM_GROUPS}u] = sqrt(sums[0]); }
}

@compute @workgroup_size(64) fn update(@builtin(global_invocation_id) id: vec3u) {
  let i = id.x + id.y * 65535u * 64u;
  if (i >= a.n) { return; }
  let norm = partial[${NORM_GROUPS}u];
  var scale = 1.0;
  if (a.maxNorm > 0.0 && norm > a.maxNorm) { scale = a.maxNorm / (norm + 1e-6); }
  let gi = g[i] * scale;
  let mi = a.b1 * m[i] + (1.0 - a.b1) * gi;
  let vi = a.b2 * v[i] + (1.0 - a.b2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] = p[i] - a.lr * ((mi / a.c1) / (sqrt(vi / a.c2) + a.eps) + a.wd * p[i]);
}
`
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

struct Shape { B: u32, M: u32, N: u32, K: u32, a: u32, w: u32, bias: u32, flags: u32, out: u32, lda: u32, ldc: u32, pad: u32 }
@group(0) @binding(0) var<uniform> u: Shape;
@group(0) @binding(1) var<storage, read> p: array<f32>;
@group(0) @binding(2) var<storage, read> ints: array<u32>;
@group(0) @binding(3) var<storage, read> floats: array<f32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
@group(0) @binding(5) var<storage, read_write> g: array<f32>;

fn flat(id: vec3u) -> u32 { return id.x + id.y * 65535u * ${WORKGROUP}u; }

// ints: [header: words at, table entries at, entries, occurrences at | B × SIDE² × 3 pixels, 4
// bytes a word | B×SLOTS+1 word starts | B × 3 listed counts (sentences, actions, observations) |
// B × 3 chosen (action, sentence, observation; NONE: none) | words (table rows) | per table row
// used: row, first and end occurrence | occurrences (bag)];
// floats: [B × COUNTS one-hot counts | B × 3 loss coefficients (log-prob, value, entropy) | temperature, thought weight]
const NONE = 0xffffffffu;
fn startsAt() -> u32 { return 4u + (u.B * SIDE * SIDE * 3u + 3u) / 4u; }
fn listed(b: u32, part: u32) -> u32 { return ints[startsAt() + u.B * SLOTS + 1u + b * 3u + part]; }
fn chosen(b: u32, part: u32) -> u32 { return ints[startsAt() + u.B * SLOTS + 1u + u.B * 3u + b * 3u + part]; }
fn bagStart(bag: u32) -> u32 { return ints[startsAt() + bag]; }
fn bagScale(bag: u32) -> f32 { return 1.0 / sqrt(f32(bagStart(bag + 1u) - bagStart(bag))); }
fn coefficient(b: u32, part: u32) -> f32 { return floats[u.B * COUNTS + b * 3u + part]; }
fn temperature() -> f32 { return floats[u.B * COUNTS + u.B * 3u]; }
fn thoughtWeight() -> f32 { return floats[u.B * COUNTS + u.B * 3u + 1u]; }

// x: intermediate tensors at offsets fixed per batch capacity, passed in Shape.a / w / bias / out

// words[b, k, :] = relu(Σ table[row] / √count + word_bias)
@compute @workgroup_size(${WORKGROUP}) fn bags(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= u.B * SLOTS * D) { return; }
  let bag = i / D; let d = i % D;
  let scale = bagScale(bag);
  var sum = 0.0;
  for (var k = bagStart(bag); k < bagStart(bag + 1u); k++) { sum += p[${o("word_embedding")} + ints[ints[0] + k] * D + d] * scale; }
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

// out[m, n] (+)= Σ_k in[m, k] · W[k, n] (W[n, k] with flag 1) + bias[n] (flag 2), relu (flag 4),
// added to out (flag 8); in's rows lda apart (0: K)
@compute @workgroup_size(${WORKGROUP}) fn matmul(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= u.M * u.N) { return; }
  let m = i / u.N; let col = i % u.N;
  let row = u.a + m * select(u.K, u.lda, u.lda != 0u);
  var sum = 0.0;
  if ((u.flags & 1u) != 0u) {
    for (var k = 0u; k < u.K; k++) { sum += x[row + k] * p[u.w + col * u.K + k]; }
  } else {
    for (var k = 0u; k < u.K; k++) { sum += x[row + k] * p[u.w + k * u.N + col]; }
  }
  if ((u.flags & 2u) != 0u) { sum += p[u.bias + col]; }
  if ((u.flags & 4u) != 0u) { sum = max(sum, 0.0); }
  if ((u.flags & 8u) != 0u) { sum += x[u.out + i]; }
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

fn attention(logits: u32, b: u32, s: u32) -> f32 {
  var top = -3.4e38;
  for (var t = 0u; t < S; t++) { top = max(top, x[logits + b * S + t]); }
  var total = 0.0;
  for (var t = 0u; t < S; t++) { total += exp(x[logits + b * S + t] - top); }
  return exp(x[logits + b * S + s] - top) / total;
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
  let word = ints[4u + byte / 4u];
  return f32((word >> ((byte % 4u) * 8u)) & 255u) / 255.0 - 0.5;
}
fn patchPixel(row: u32, k: u32) -> f32 {
  let b = row / (NP * NP); let py = (row / NP) % NP; let px = row % NP;
  let dy = k / (PATCH * 3u); let dx = (k / 3u) % PATCH; let ch = k % 3u;
  return pixel(b, py * PATCH + dy, px * PATCH + dx, ch);
}

// patch features: relu(patch pixels · patch_w + patch_b), patches of PATCH² pixels in a NP×NP grid
@compute @workgroup_size(${WORKGROUP}) fn patches(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= u.B * NP * NP * PF) { return; }
  let row = i / PF; let col = i % PF;
  var sum = 0.0;
  for (var k = 0u; k < PATCH * PATCH * 3u; k++) { sum += patchPixel(row, k) * p[${o("patch_w")} + k * PF + col]; }
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

// ---- training ----

// log-softmax of logits / t over n entries at x[logits + b·n ..], written to x[out + b·n ..]; the chosen entry's
fn logSoftmax(logits: u32, out: u32, b: u32, n: u32, pick: u32) -> f32 {
  let t = temperature();
  var top = -3.4e38;
  for (var k = 0u; k < n; k++) { top = max(top, x[logits + b * n + k] / t); }
  var total = 0.0;
  for (var k = 0u; k < n; k++) { total += exp(x[logits + b * n + k] / t - top); }
  let logZ = log(total);
  for (var k = 0u; k < n; k++) { x[out + b * n + k] = x[logits + b * n + k] / t - top - logZ; }
  if (pick == NONE) { return 0.0; }
  return x[out + b * n + pick];
}

// per sample: log-softmaxes (Shape.a actions, .w sentences, .bias observations logits → .out: the three
// log-softmaxes, then log-prob, value, entropy per sample at .out + lps), value from .K
@compute @workgroup_size(${WORKGROUP}) fn heads(@builtin(global_invocation_id) id: vec3u) {
  let b = flat(id);
  if (b >= u.B) { return; }
  let lpa = u.out; let lps = lpa + u.B * C; let lpo = lps + u.B * S; let ev = lpo + u.B * O;
  let action = logSoftmax(u.a, lpa, b, C, chosen(b, 0u));
  let thought = logSoftmax(u.w, lps, b, S, chosen(b, 1u)) + logSoftmax(u.bias, lpo, b, O, chosen(b, 2u));
  var entropy = 0.0;
  for (var k = 0u; k < C; k++) { let lp = x[lpa + b * C + k]; entropy -= exp(lp) * lp; }
  x[ev + b * 3u] = action + thoughtWeight() * thought;
  x[ev + b * 3u + 1u] = x[u.K + b];
  x[ev + b * 3u + 2u] = entropy;
}

// d logits of one head: c·(onehot − p·[chosen]) (− c_H · p · (logp + H) for the actions), / t
@compute @workgroup_size(${WORKGROUP}) fn headsBack(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  let width = C + S + O;
  if (i >= u.B * width) { return; }
  let b = i / width; let j = i % width;
  let lpa = u.a; let lps = lpa + u.B * C; let lpo = lps + u.B * S; let ev = lpo + u.B * O;
  var lp = 0.0; var pick = NONE; var k = j; var cl = coefficient(b, 0u); var at = u.out;
  if (j < C) { lp = x[lpa + b * C + j]; pick = chosen(b, 0u); at = u.out + b * C + k; }
  else if (j < C + S) { k = j - C; lp = x[lps + b * S + k]; pick = chosen(b, 1u); cl *= thoughtWeight(); at = u.w + b * S + k; }
  else { k = j - C - S; lp = x[lpo + b * O + k]; pick = chosen(b, 2u); cl *= thoughtWeight(); at = u.bias + b * O + k; }
  let pk = exp(lp);
  var d = 0.0;
  if (pick != NONE) { d = cl * (select(0.0, 1.0, k == pick) - pk); }
  if (j < C) { d -= coefficient(b, 2u) * pk * (lp + x[ev + b * 3u + 2u]); }
  x[at] = d / temperature();
}

// d value: the value coefficients (Shape.out, B values)
@compute @workgroup_size(${WORKGROUP}) fn valueSeed(@builtin(global_invocation_id) id: vec3u) {
  let b = flat(id);
  if (b >= u.B) { return; }
  x[u.out + b] = coefficient(b, 1u);
}

// out[m, n] = (in[m·lda + n] (+ add[m·N + n], flag 1)) · [y[m·N + n] > 0]: a relu's gradient
@compute @workgroup_size(${WORKGROUP}) fn reluBack(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= u.M * u.N) { return; }
  let m = i / u.N; let n = i % u.N;
  var v = x[u.a + m * select(u.N, u.lda, u.lda != 0u) + n];
  if ((u.flags & 1u) != 0u) { v += x[u.bias + i]; }
  x[u.out + i] = select(0.0, v, x[u.w + i] > 0.0);
}

// weight gradient g[out + k·N + n] = Σ_m A[m·lda + k] · dC[m·ldc + n] over M rows; row k = K is
// the bias's Σ_m dC (flag 2); A's rows are patch pixels with flag 16
@compute @workgroup_size(${WORKGROUP}) fn outer(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  let rows = select(u.K, u.K + 1u, (u.flags & 2u) != 0u);
  if (i >= rows * u.N) { return; }
  let k = i / u.N; let n = i % u.N;
  let lda = select(u.K, u.lda, u.lda != 0u); let ldc = select(u.N, u.ldc, u.ldc != 0u);
  var sum = 0.0;
  if (k == u.K) {
    for (var m = 0u; m < u.M; m++) { sum += x[u.w + m * ldc + n]; }
    g[u.bias + n] = sum;
    return;
  }
  if ((u.flags & 16u) != 0u) {
    for (var m = 0u; m < u.M; m++) { sum += patchPixel(m, k) * x[u.w + m * ldc + n]; }
  } else {
    for (var m = 0u; m < u.M; m++) { sum += x[u.a + m * lda + k] * x[u.w + m * ldc + n]; }
  }
  g[u.out + i] = sum;
}

// d query of a head: dq[b, d] = Σ_k dlogits[b, k] · candidate[b, k, d] (flags: 0 actions, 1 observations);
// and the prior's gradient g[prior + d] = Σ_b Σ_k dlogits · candidate (threads B·D .. B·D + D)
@compute @workgroup_size(${WORKGROUP}) fn scoreBack(@builtin(global_invocation_id) id: vec3u) {
  let count = select(C, O, u.flags == 1u);
  let first = select(S, S + C, u.flags == 1u);
  let prior = select(${o("action_prior")}, ${o("observation_prior")}, u.flags == 1u);
  let i = flat(id);
  if (i >= u.B * D + D) { return; }
  if (i < u.B * D) {
    let b = i / D; let d = i % D;
    var sum = 0.0;
    for (var k = 0u; k < count; k++) { sum += x[u.w + b * count + k] * x[u.a + (b * SLOTS + first + k) * D + d]; }
    x[u.out + i] = sum;
    return;
  }
  let d = i - u.B * D;
  var sum = 0.0;
  for (var b = 0u; b < u.B; b++) {
    for (var k = 0u; k < count; k++) { sum += x[u.w + b * count + k] * x[u.a + (b * SLOTS + first + k) * D + d]; }
  }
  g[prior + d] = sum;
}

// pooled's gradient to the patch features, through the relu: mean's share, and max's to every patch at the max
@compute @workgroup_size(${WORKGROUP}) fn poolBack(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= u.B * NP * NP * PF) { return; }
  let row = i / PF; let col = i % PF; let b = row / (NP * NP);
  let v = x[u.a + i];
  var d = x[u.w + b * 2u * PF + col] / f32(NP * NP);
  if (v == x[u.K + b * 2u * PF + PF + col]) { d += x[u.w + b * 2u * PF + PF + col]; }
  x[u.out + i] = select(0.0, d, v > 0.0);
}

// attention backward, step 1 per (b, s): the weight a and da = Σ_d dattended · sentence into out (a) and out + B·S (da)
@compute @workgroup_size(${WORKGROUP}) fn attendBack1(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= u.B * S) { return; }
  let b = i / S; let s = i % S;
  var da = 0.0;
  for (var d = 0u; d < D; d++) { da += x[u.K + b * u.lda + d] * (x[u.a + (b * SLOTS + s) * D + d] + p[${o("sentence_position")} + s * D + d]); }
  x[u.out + i] = attention(u.w, b, s);
  x[u.out + u.B * S + i] = da;
}

// step 2 per (b, s): d logits = a · (da − Σ a·da) + the instruction head's, into out + 2·B·S
@compute @workgroup_size(${WORKGROUP}) fn attendBack2(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= u.B * S) { return; }
  let b = i / S;
  var ad = 0.0;
  for (var t = 0u; t < S; t++) { ad += x[u.out + b * S + t] * x[u.out + u.B * S + b * S + t]; }
  x[u.out + 2u * u.B * S + i] = x[u.out + i] * (x[u.out + u.B * S + i] - ad) + x[u.bias + i];
}

// step 3 per (b, s, d): d sentence = a · dattended + dlogits · kq / √D (into .N); per (b, d) after them:
// dkq = Σ_s dlogits · sentence / √D (into .N + B·S·D)
@compute @workgroup_size(${WORKGROUP}) fn attendBack3(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  let dl = u.out + 2u * u.B * S;
  if (i < u.B * S * D) {
    let b = i / (S * D); let s = (i / D) % S; let d = i % D;
    x[u.N + i] = x[u.out + b * S + s] * x[u.K + b * u.lda + d] + x[dl + b * S + s] * x[u.w + b * D + d] / ${f(Math.sqrt(D))};
    return;
  }
  let j = i - u.B * S * D;
  if (j >= u.B * D) { return; }
  let b = j / D; let d = j % D;
  var sum = 0.0;
  for (var s = 0u; s < S; s++) { sum += x[dl + b * S + s] * (x[u.a + (b * SLOTS + s) * D + d] + p[${o("sentence_position")} + s * D + d]); }
  x[u.N + u.B * S * D + j] = sum / ${f(Math.sqrt(D))};
}

// g[out + r·D + d] = Σ_b x[a + (b·rows + r)·D + d] (a parameter broadcast over the batch: positions, biases)
@compute @workgroup_size(${WORKGROUP}) fn sumBatch(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= u.K * D) { return; }
  let r = i / D; let d = i % D;
  var sum = 0.0;
  for (var b = 0u; b < u.M; b++) { sum += x[u.a + (b * u.K + r) * D + d]; }
  g[u.out + i] = sum;
}

// d words through the relu, gathered from every use: sentences (.a: d sentence), actions and
// observations (.w: d action logits, then d observation logits; .bias: qa, then qo), context (.K: d ctxIn)
// and the current line (.lda: d joint input); .N: words
@compute @workgroup_size(${WORKGROUP}) fn wordsBack(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= u.B * SLOTS * D) { return; }
  let b = i / (SLOTS * D); let k = (i / D) % SLOTS; let d = i % D;
  var v = 0.0;
  if (k < S) { v = x[u.a + (b * S + k) * D + d]; }
  else if (k < S + C) { v = x[u.w + b * C + k - S] * (x[u.bias + b * D + d] + p[${o("action_prior")} + d]); }
  else if (k < S + C + O) { v = x[u.w + u.B * C + b * O + k - S - C] * (x[u.bias + u.B * D + b * D + d] + p[${o("observation_prior")} + d]); }
  if (k >= SLOTS - ${CONTEXT_SLOTS}u) { v += x[u.K + b * CTX_IN + (k - SLOTS + ${CONTEXT_SLOTS}u) * D + d]; }
  if (k == SLOTS - ${CONTEXT_SLOTS}u) { v += x[u.lda + b * 4u * D + 3u * D + d]; }
  x[u.out + i] = select(0.0, v, x[u.N + i] > 0.0);
}

// the word table's gradient, row by row of the rows used: Σ over the row's occurrences of d bag / √count
@compute @workgroup_size(${WORKGROUP}) fn tableBack(@builtin(global_invocation_id) id: vec3u) {
  let i = flat(id);
  if (i >= ints[2] * D) { return; }
  let e = ints[1] + (i / D) * 3u; let d = i % D;
  var sum = 0.0;
  for (var o = ints[e + 1u]; o < ints[e + 2u]; o++) { let bag = ints[ints[3] + o]; sum += x[u.a + bag * D + d] * bagScale(bag); }
  g[${o("word_embedding")} + ints[e] * D + d] = sum;
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
        const uniform = new ArrayBuffer(48)
        new Uint32Array(uniform, 0, 1)[0] = total
        new Float32Array(uniform, 4, 8).set([lr, o.beta1, o.beta2, 1 - o.beta1 ** step, 1 - o.beta2 ** step, o.eps, o.weight_decay, o.max_grad_norm])
        device.queue.writeBuffer(adam.uniform, 0, uniform)
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
