import type { OptimizerConfig } from "../../core/optimizer.ts"

/**
 * AdamW in WGSL, for learners whose parameters live on a GPU as one flat buffer (the fused
 * tfjs-vl model, the generator's engine): what adamw.ts computes per element, in single precision.
 */

/** Workgroups of the first pass over the gradient's squares (the second sums their partial sums). */
export const NORM_GROUPS = 256

/**
 * AdamW over the flat parameter buffer, as adamw.ts computes it per element
 * (in single precision): the gradient's global norm in two passes (NORM_GROUPS partial sums of
 * squares, then their sum), then every element's update with the gradient clipped by it.
 */
export const ADAMW = /* wgsl */ `
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

/** ADAMW's uniforms for update number `step` (from 1) over `n` parameters at learning rate `lr`. */
export const adamwUniforms = (n: number, config: OptimizerConfig, step: number, lr: number): ArrayBuffer => {
  const words = new ArrayBuffer(48)
  new Uint32Array(words, 0, 1)[0] = n
  new Float32Array(words, 4, 8).set([
    lr,
    config.beta1,
    config.beta2,
    1 - config.beta1 ** step,
    1 - config.beta2 ** step,
    config.eps,
    config.weight_decay,
    config.max_grad_norm
  ])
  return words
}
