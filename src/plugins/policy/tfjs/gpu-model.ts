/// <reference types="@webgpu/types" />
import { type Features, slotCount } from "./features.ts"
import { ADAMW, adamwUniforms, NORM_GROUPS } from "../../optimizer/adamw-gpu.ts"
import { shader, WORKGROUP } from "./gpu-kernels.ts"
import type { OptimizerConfig, OptimizerStep } from "../../../core/optimizer.ts"
import type { Evaluation, LossCoefficients } from "../../../core/policy.ts"
import { type ModelConfig, parameterSpecs } from "./model.ts"
import { parameterLayout } from "../parameter-layout.ts"
import { buildPlan, type Plan, PLAN_ENTRIES, type PlanEntry, type PlanStep, storageUsage } from "./gpu-plan.ts"

/**
 * The policy's forward pass (model.ts `forward`) and its gradient as a few dozen WGSL kernels on
 * raw WebGPU. tfjs's WebGPU backend pays a CPU cost per operation from Node (a uniform buffer, a
 * bind group, often a buffer for a scalar), and a training step is hundreds of operations; here
 * the parameters live in one GPU buffer, every bind group is made once per batch capacity, and a
 * forward pass is one submission and one read-back. docs/gpu.md has the measured costs. Same
 * arithmetic as the tfjs model in single precision; sums run in another order, so results agree
 * to float rounding (bench/gpu-forward.ts compares them on a GPU machine).
 *
 * The kernels' WGSL is in gpu-kernels.ts; this file is the host side: the parameter buffer, the
 * batch's inputs, the submissions and read-backs, and AdamW; gpu-plan.ts lays out a batch's
 * intermediates and its dispatches.
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

export const makeGpuModel = (device: GPUDevice, config: ModelConfig): GpuModel => {
  const c = config
  const { maxSentences: S, maxActions: C, maxObservations: O, maxCount, imageSide } = c.shape
  const slots = slotCount(c.shape)
  const counts = 4 * (maxCount + 1)
  const { offset, total, flatten, split } = parameterLayout(parameterSpecs(c))
  // a kernel that does not compile is an error of the first batch, with the compiler's messages
  // (pushErrorScope before the module, then this once its pipelines exist)
  const built = (module: GPUShaderModule, what: string): Promise<void> =>
    Promise.all([device.popErrorScope(), module.getCompilationInfo()]).then(([error, info]) => {
      const messages = info.messages.filter((m) => m.type === "error").map((m) => `line ${m.lineNum}: ${m.message}`)
      if (error !== null || messages.length > 0) {
        throw new Error(`the ${what} kernels do not build: ${[error?.message ?? "", ...messages].filter((m) => m !== "").join("; ")}`)
      }
    })
  device.pushErrorScope("validation")
  const module = device.createShaderModule({ code: shader(c, offset) })
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
    PLAN_ENTRIES.map((e) => [e, device.createComputePipeline({ layout: pipelineLayout, compute: { module, entryPoint: e } })])
  ) as Record<PlanEntry, GPUComputePipeline>
  const storage = storageUsage()
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

  let plan: Plan | undefined
  let shapedFor = -1

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
      plan = buildPlan({ device, config: c, offset, pipelines, bindLayout, params, grads }, capacity, Math.max(words, 64 * capacity))
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

  const dispatch = (encoder: GPUCommandEncoder, steps: ReadonlyArray<PlanStep>, B: number) => {
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
