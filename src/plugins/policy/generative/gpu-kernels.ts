/**
 * The WGSL of the generator's engine (gpu-engine.ts records dispatches of these): the matrix
 * product's entry points, and the element-wise and row-wise kernels around a body of WGSL text.
 */

/** Threads per workgroup of the element-wise kernel. */
export const WG = 256
/** Workgroups along x at most (more go along y). */
export const MAX_X = 65535

/** `groups` workgroups as a dispatch's x and y: along x up to MAX_X, then rows of MAX_X (kernels read their index as x + y·MAX_X). */
export const spread = (groups: number): [number, number] => {
  const g = Math.max(1, groups)
  return g <= MAX_X ? [g, 1] : [MAX_X, Math.ceil(g / MAX_X)]
}

/** The matrix products' entry points (main: 64×64 tiles; thin, dot, small: narrower shapes) over the uniforms of gpu-engine.ts's matmul. */
export const MATMUL = /* wgsl */ `
struct U { M: u32, N: u32, K: u32, Z2: u32, kTotal: u32,
  aOff: u32, aS1: u32, aS2: u32, aR: u32, aC: u32,
  bOff: u32, bS1: u32, bS2: u32, bR: u32, bC: u32,
  cOff: u32, cS1: u32, cS2: u32, cR: u32, cC: u32,
  biasOff: u32, addOff: u32, flags: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> addend: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;
// batch z's offsets of A, B and C, and its inner dimension (a split product's last part is shorter)
struct Batch { a: u32, b: u32, c: u32, kMax: u32 }
fn batchOf(z: u32) -> Batch {
  let z1 = z / u.Z2;
  let z2 = z % u.Z2;
  var kMax = u.K;
  if (u.kTotal != 0u) { kMax = min(u.K, u.kTotal - z * u.K); }
  return Batch(u.aOff + z1 * u.aS1 + z2 * u.aS2, u.bOff + z1 * u.bS1 + z2 * u.bS2, u.cOff + z1 * u.cS1 + z2 * u.cS2, kMax);
}
// C[r, col] from its sum: scaled, the bias, the addend, relu, accumulated, as the flags ask
fn store(cBase: u32, r: u32, col: u32, sum: f32) {
  let at = r * u.cR + col * u.cC;
  var v = u.alpha * sum;
  if ((u.flags & 2u) != 0u) { v += bias[u.biasOff + col]; }
  if ((u.flags & 4u) != 0u) { v += addend[u.addOff + at]; }
  if ((u.flags & 8u) != 0u) { v = max(v, 0.0); }
  if ((u.flags & 1u) != 0u) { v += c[cBase + at]; }
  c[cBase + at] = v;
}
var<workgroup> As: array<f32, 1024>;
var<workgroup> Bs: array<f32, 1024>;
@compute @workgroup_size(16, 16) fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let o = batchOf(wid.z);
  let row0 = wid.y * 64u;
  let col0 = wid.x * 64u;
  let t = lid.y * 16u + lid.x;
  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < o.kMax; k0 += 16u) {
    for (var i = 0u; i < 4u; i++) {
      let e = t + i * 256u;
      let r = e / 16u;
      let kk = e % 16u;
      var va = 0.0;
      if (row0 + r < u.M && k0 + kk < o.kMax) { va = a[o.a + (row0 + r) * u.aR + (k0 + kk) * u.aC]; }
      As[r * 16u + kk] = va;
      let kb = e / 64u;
      let cb = e % 64u;
      var vb = 0.0;
      if (col0 + cb < u.N && k0 + kb < o.kMax) { vb = b[o.b + (k0 + kb) * u.bR + (col0 + cb) * u.bC]; }
      Bs[kb * 64u + cb] = vb;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      var av: array<f32, 4>;
      var bv: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { av[i] = As[(lid.y * 4u + i) * 16u + kk]; bv[i] = Bs[kk * 64u + lid.x + i * 16u]; }
      for (var i = 0u; i < 4u; i++) { for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] += av[i] * bv[j]; } }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let r = row0 + lid.y * 4u + i;
    if (r >= u.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let col = col0 + lid.x + j * 16u;
      if (col >= u.N) { continue; }
      store(o.c, r, col, acc[i * 4u + j]);
    }
  }
}

// a product with at most 16 columns and many rows (an attention head's weighted sum of values):
// 128 rows a workgroup, a thread per row and its 16 columns; tiles of A (padded against bank
// conflicts) and B through workgroup memory, A loaded along whichever of its strides is 1
var<workgroup> At: array<f32, ${128 * 17}>;
var<workgroup> Bt: array<f32, 256>;
@compute @workgroup_size(128) fn thin(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u) {
  let o = batchOf(wid.z);
  let row0 = wid.x * 128u;
  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < o.kMax; k0 += 16u) {
    for (var q = 0u; q < 16u; q++) {
      let e = l + q * 128u;
      var r = e / 16u;
      var kk = e % 16u;
      if (u.aC != 1u) { r = e % 128u; kk = e / 128u; }
      var va = 0.0;
      if (row0 + r < u.M && k0 + kk < o.kMax) { va = a[o.a + (row0 + r) * u.aR + (k0 + kk) * u.aC]; }
      At[r * 17u + kk] = va;
    }
    for (var q = 0u; q < 2u; q++) {
      let e = l + q * 128u;
      let kb = e / 16u;
      let cb = e % 16u;
      var vb = 0.0;
      if (cb < u.N && k0 + kb < o.kMax) { vb = b[o.b + (k0 + kb) * u.bR + cb * u.bC]; }
      Bt[kb * 16u + cb] = vb;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let av = At[l * 17u + kk];
      for (var j = 0u; j < 16u; j++) { acc[j] += av * Bt[kk * 16u + j]; }
    }
    workgroupBarrier();
  }
  let r = row0 + l;
  if (r >= u.M) { return; }
  for (var j = 0u; j < u.N; j++) {
    store(o.c, r, j, acc[j]);
  }
}

// a product of at most 16 outputs over a long inner dimension (a decoding step's weighted sum of
// values): 16 threads per output, each summing every 16th term, then their sum
var<workgroup> Ds: array<f32, 256>;
@compute @workgroup_size(256) fn dot(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u) {
  let o = batchOf(wid.z);
  let e = l / 16u;
  let part = l % 16u;
  let r = e / u.N;
  let col = e % u.N;
  var acc = 0.0;
  if (e < u.M * u.N) {
    for (var k = part; k < o.kMax; k += 16u) { acc += a[o.a + r * u.aR + k * u.aC] * b[o.b + k * u.bR + col * u.bC]; }
  }
  Ds[l] = acc;
  workgroupBarrier();
  if (part != 0u || e >= u.M * u.N) { return; }
  var s = 0.0;
  for (var q = 0u; q < 16u; q++) { s += Ds[l + q]; }
  store(o.c, r, col, s);
}

// a product with a row or a column or so (a decoding step's, a head of width 1): one thread per output element
@compute @workgroup_size(256) fn small(@builtin(global_invocation_id) gid: vec3u) {
  let e = gid.x;
  if (e >= u.M * u.N) { return; }
  let r = e / u.N;
  let col = e % u.N;
  let o = batchOf(gid.z);
  let aBase = o.a + r * u.aR;
  let bBase = o.b + col * u.bC;
  var acc = 0.0;
  for (var k = 0u; k < o.kMax; k++) { acc += a[aBase + k * u.aC] * b[bBase + k * u.bR]; }
  store(o.c, r, col, acc);
}
`

/** The element-wise and row-wise kernels' uniforms and bindings. */
const ROWS_AND_ELEMENTS = /* wgsl */ `
struct U { n: u32, o0: u32, o1: u32, o2: u32, o3: u32, oo: u32, p0: u32, p1: u32, p2: u32, p3: u32, p4: u32, p5: u32, p6: u32, p7: u32, f0: f32, f1: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read> x1: array<f32>;
@group(0) @binding(3) var<storage, read> x2: array<f32>;
@group(0) @binding(4) var<storage, read> x3: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;`

/**
 * The element-wise kernel around a body: `i` is the thread's index (< u.n); x0…x3 the inputs at
 * float offsets u.o0…u.o3, `out` the output at u.oo; u.p0…u.p7 integers and u.f0, u.f1 floats.
 */
export const elementwise = (body: string) =>
  /* wgsl */ `${ROWS_AND_ELEMENTS}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x + gid.y * ${MAX_X * WG}u;
  if (i >= u.n) { return; }
  ${body}
}
`

/** Threads that share one row in `rowwise`. */
export const ROW = 64

/** A reduction over a row's threads in workgroup memory, `combine` of `a` and `b` (every thread gets the result). */
const rowReduction = (name: string, combine: string) => /* wgsl */ `
fn ${name}(v: f32, l: u32) -> f32 {
  shared_[l] = v;
  workgroupBarrier();
  for (var s = ROW / 2u; s > 0u; s >>= 1u) {
    if (l < s) { let a = shared_[l]; let b = shared_[l + s]; shared_[l] = ${combine}; }
    workgroupBarrier();
  }
  let r = shared_[0];
  workgroupBarrier();
  return r;
}`

/**
 * The row-wise kernel around a body: one workgroup of ROW threads per row `i` (< u.n), thread
 * `l` taking the row's elements l, l + ROW, …; `sumRow(v, l)` and `maxRow(v, l)` reduce a value
 * over the row's threads (every thread gets the result; call them from every thread), and
 * `logPartitionRow` gives a row of x0's maximum and log-partition at a temperature. `ROW` is a
 * WGSL constant there. Bindings and uniforms as in `elementwise`.
 */
export const rowwise = (body: string) =>
  /* wgsl */ `${ROWS_AND_ELEMENTS}
const ROW = ${ROW}u;
var<workgroup> shared_: array<f32, ROW>;
${rowReduction("sumRow", "a + b")}
${rowReduction("maxRow", "max(a, b)")}
// the largest of x0[base + k] / tau over k < n, and log Σ exp(x0[base + k] / tau): (max, log Z)
fn logPartitionRow(base: u32, n: u32, tau: f32, l: u32) -> vec2f {
  var m = -3.4e38;
  for (var k = l; k < n; k += ROW) { m = max(m, x0[base + k] / tau); }
  m = maxRow(m, l);
  var s = 0.0;
  for (var k = l; k < n; k += ROW) { s += exp(x0[base + k] / tau - m); }
  return vec2f(m, m + log(sumRow(s, l)));
}
@compute @workgroup_size(${ROW}) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) l: u32) {
  let i = wid.x + wid.y * ${MAX_X}u;
  if (i >= u.n) { return; }
  ${body}
}
`
