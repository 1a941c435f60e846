import { CONTEXT_SLOTS, slotCount } from "./features.ts"
import type { ModelConfig } from "./model.ts"

/**
 * The WGSL sources of the fused WebGPU model (gpu-model.ts runs them): every kernel of the
 * forward pass, the loss and the backward pass, with the model's sizes and the parameters'
 * offsets baked in as constants (AdamW over the flat parameter buffer is the optimizer's:
 * plugins/optimizer/adamw-gpu.ts).
 */

export const WORKGROUP = 64
const NEG = -1e9

/** WGSL for every kernel, the model's sizes and the parameters' offsets baked in as constants. */
export const shader = (c: ModelConfig, offset: Record<string, number>): string => {
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
