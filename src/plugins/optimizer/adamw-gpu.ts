import { Effect } from "effect"
import { copyMoments, type OptimizerConfig, type OptimizerService, type OptimizerState, type OptimizerStep } from "../../core/optimizer.ts"
import type { Parameters } from "../../core/parameters.ts"
import { PolicyError } from "../../core/policy.ts"
import { NAME } from "./adamw.ts"

/**
 * AdamW on a GPU, for learners whose parameters live there as one flat buffer (the fused tfjs-vl
 * model, the generator's engine): its WGSL, what adamw.ts computes per element in single
 * precision, and the learner's side of running it there (adamwOnDevice).
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

/** What a learner's GPU side offers for AdamW there (its parameters one flat buffer). */
export interface AdamWDevice {
  /** From now on every gradients() call also takes a step there; undefined: back to returning gradients. */
  readonly use: (adamw: { readonly config: OptimizerConfig; readonly learningRate: (step: number) => number } | undefined) => void
  /** The step the last gradients() call took there (once). */
  readonly lastStep: () => OptimizerStep | undefined
  /** Sets the step count and moments (a checkpoint's; parameters it lacks start from zero). */
  readonly restore: (step: number, moments: OptimizerState["moments"]) => void
  /** The parameters and moments as they are there, by parameter. */
  readonly read: () => Promise<{ readonly parameters: Parameters; readonly m: Parameters; readonly v: Parameters }>
}

/**
 * A learner's `onDevice` and `settle` for AdamW on its GPU (`device`; undefined where it has
 * none): the returned optimizer reports the steps taken there, and `ahead()` says when the GPU's
 * parameters and moments are newer than `parameters` (commit() then has nothing to push) until
 * `settle` reads them back.
 */
export const adamwOnDevice = (device: AdamWDevice | undefined, parameters: Parameters) => {
  let ahead = false
  let moments = new Map<string, { m: Float32Array; v: Float32Array }>()
  let deviceStep = 0
  const onDevice = (name: string, optimizer: OptimizerService): OptimizerService | undefined => {
    if (device === undefined || name !== NAME || optimizer.config.grad_accum_steps !== 1) {
      // another optimizer takes this learner's gradients in JS from now on
      if (ahead) throw new Error("another optimizer was placed before settle() brought the GPU's parameters back")
      device?.use(undefined)
      return undefined
    }
    const d = device
    d.use(optimizer)
    deviceStep = 0
    moments = new Map()
    return {
      config: optimizer.config,
      learningRate: optimizer.learningRate,
      // the update already ran on the GPU inside gradients(): report it
      accumulate: () => {
        const step = d.lastStep()
        if (step === undefined) throw new Error("the GPU's AdamW was asked for a step without a gradients() call before it")
        ahead = true
        deviceStep = step.step
        return step
      },
      flush: () => undefined,
      state: () => {
        if (ahead) throw new Error("the GPU's AdamW state was read before settle() brought it back")
        return { step: deviceStep, pending: 0, moments: copyMoments(moments) }
      },
      restore: (state) => {
        try {
          d.restore(state.step, state.moments)
        } catch (e) {
          throw new RangeError(`optimizer state: ${(e as Error).message}`)
        }
        deviceStep = state.step
        moments = copyMoments(state.moments)
      }
    }
  }
  const settle = () =>
    Effect.tryPromise({
      try: async () => {
        if (device === undefined || !ahead) return
        const read = await device.read()
        for (const [name, p] of read.parameters) parameters.get(name)!.set(p)
        moments = new Map([...read.m].map(([name, m]) => [name, { m, v: read.v.get(name)! }]))
        ahead = false
      },
      catch: (e) => new PolicyError({ message: `reading the parameters back from the GPU: ${(e as Error).message}` })
    })
  return { onDevice, settle, ahead: () => ahead }
}
