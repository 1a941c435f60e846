/// <reference types="@webgpu/types" />
/**
 * A small static-graph engine on raw WebGPU, for the generative policy (gpu-network.ts builds the
 * network with it). A graph is recorded once per batch shape: every intermediate gets its own
 * buffer, every dispatch its uniform and bind group; running it is one submission of the recorded
 * dispatches. Reverse mode is a tape: each operation that takes part in training pushes the
 * dispatches of its gradient, which `backward` records in reverse order; gradients accumulate
 * (every gradient buffer is cleared before a backward pass).
 *
 * A few kernels (gpu-kernels.ts) do everything: a tiled matrix product over strided, batched
 * operands (a transpose is a swap of strides, a head of an attention a batch offset; narrower
 * shapes have entry points of their own), and element-wise and row-wise kernels (a thread per
 * element, a workgroup per row) whose bodies are WGSL text (pipelines are cached by it).
 * The reason: tfjs's WebGPU backend pays a CPU cost per operation from Node, which made the
 * generator op-bound whatever the batch (docs/measurements.md).
 */

import { elementwise, MATMUL, MAX_X, rowwise, spread, WG } from "./gpu-kernels.ts"

/** A float array on the GPU: `n` floats at float offset `off` of `buf`. `g`: its gradient, once asked for. */
export interface T {
  readonly buf: GPUBuffer
  readonly off: number
  readonly n: number
  g?: T
  /** A view's array and its float offset there (its gradient is the same view of the array's). */
  readonly of?: { readonly t: T; readonly at: number }
}

/** An operand of a matrix product: element (z, row, col) of `t` at off + (z / Z2)·s1 + (z % Z2)·s2 + row·r + col·c. */
export interface Operand {
  readonly t: T
  readonly s1: number
  readonly s2: number
  readonly r: number
  readonly c: number
}

export interface Dispatch {
  readonly pipeline: GPUComputePipeline
  readonly group: GPUBindGroup
  readonly x: number
  readonly y: number
  readonly z: number
  /** What it computes, for profiles: the product's shape or the element-wise body's first line. */
  readonly label: string
}

export interface ElementwiseArgs {
  readonly out: T
  readonly inputs?: ReadonlyArray<T>
  /** Threads. */
  readonly n: number
  readonly p?: ReadonlyArray<number>
  readonly f?: ReadonlyArray<number>
}

export interface MatmulArgs {
  readonly a: Operand
  readonly b: Operand
  readonly c: Operand
  readonly Z: number
  /** The inner batch count (z = z1·Z2 + z2); 1 when the batch has one level. */
  readonly Z2?: number | undefined
  readonly M: number
  readonly N: number
  readonly K: number
  readonly alpha?: number | undefined
  readonly bias?: T | undefined
  /** Added to the result, laid out as c is (a residual). */
  readonly addend?: T | undefined
  readonly relu?: boolean | undefined
  readonly accumulate?: boolean | undefined
}

export type Engine = ReturnType<typeof makeEngine>

export const makeEngine = (device: GPUDevice) => {
  const entry = (binding: number, type: GPUBufferBindingType): GPUBindGroupLayoutEntry => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type } })
  const bindLayout = device.createBindGroupLayout({
    entries: [
      entry(0, "uniform"),
      entry(1, "read-only-storage"),
      entry(2, "read-only-storage"),
      entry(3, "read-only-storage"),
      entry(4, "read-only-storage"),
      entry(5, "storage")
    ]
  })
  const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [bindLayout] })
  const pipelines = new Map<string, GPUComputePipeline>()
  const errors: string[] = []
  /** What building found wrong is known asynchronously: the next `run` waits for these first. */
  let checks: Array<Promise<void>> = []
  const modules = new Map<string, GPUShaderModule>()
  const pipeline = (code: string, entryPoint = "main"): GPUComputePipeline => {
    let p = pipelines.get(`${entryPoint} ${code}`)
    if (p === undefined) {
      let module = modules.get(code)
      if (module === undefined) {
        module = device.createShaderModule({ code })
        modules.set(code, module)
      }
      checks.push(
        module.getCompilationInfo().then((info) => {
          for (const m of info.messages) if (m.type === "error") errors.push(`line ${m.lineNum}: ${m.message}\n${code}`)
        })
      )
      p = device.createComputePipeline({ layout: pipelineLayout, compute: { module, entryPoint } })
      pipelines.set(`${entryPoint} ${code}`, p)
    }
    return p
  }
  const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC
  /** Buffers made by `alloc` and the dispatches' uniforms, by owner: `release(owner)` destroys them. */
  const owned = new Map<object, GPUBuffer[]>()
  let owner: object = {}
  const own = (b: GPUBuffer) => {
    const list = owned.get(owner) ?? []
    list.push(b)
    owned.set(owner, list)
    return b
  }
  const dummy = device.createBuffer({ size: 16, usage: storage })
  /** What the dispatches being made belong to (a layer's name), for profiles' labels. */
  let scope = ""
  const within = <A>(name: string, make: () => A): A => {
    const outer = scope
    scope = `${name}: `
    try {
      return make()
    } finally {
      scope = outer
    }
  }
  /** A fresh zeroed float array on the GPU. */
  /** Floats one binding may hold. */
  const bindable = Math.floor(device.limits.maxStorageBufferBindingSize / 4)
  const alloc = (n: number): T => {
    if (n > bindable) {
      throw new RangeError(
        `an intermediate of ${n} floats is past this GPU's largest binding (${bindable} floats): a smaller batch, prompt or width fits`
      )
    }
    return { buf: own(device.createBuffer({ size: Math.max(16, Math.ceil((n * 4) / 16) * 16), usage: storage })), off: 0, n }
  }
  const view = (t: T, off: number, n: number): T => ({ buf: t.buf, off: t.off + off, n, of: { t: t.of?.t ?? t, at: (t.of?.at ?? 0) + off } })
  const uniform = (words: ArrayBuffer): GPUBuffer => {
    const b = own(device.createBuffer({ size: words.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }))
    device.queue.writeBuffer(b, 0, words)
    return b
  }
  const group = (u: GPUBuffer, reads: ReadonlyArray<GPUBuffer>, out: GPUBuffer): GPUBindGroup =>
    device.createBindGroup({
      layout: bindLayout,
      entries: [
        { binding: 0, resource: { buffer: u } },
        ...[0, 1, 2, 3].map((k) => ({ binding: k + 1, resource: { buffer: reads[k] ?? dummy } })),
        { binding: 5, resource: { buffer: out } }
      ]
    })

  const uniformsOf = (args: ElementwiseArgs): ArrayBuffer => {
    const words = new ArrayBuffer(64)
    const u32 = new Uint32Array(words)
    const f32 = new Float32Array(words)
    u32[0] = args.n
    ;(args.inputs ?? []).forEach((t, k) => (u32[1 + k] = t.off))
    u32[5] = args.out.off
    ;(args.p ?? []).forEach((v, k) => (u32[6 + k] = v))
    ;(args.f ?? []).forEach((v, k) => (f32[14 + k] = v))
    return words
  }
  /** A dispatch of the element-wise or row-wise kernel around `body` over `groups` workgroups. */
  const bodyDispatch = (kind: "ew" | "rows", code: string, body: string, args: ElementwiseArgs, groups: number): Dispatch => {
    const [x, y] = spread(groups)
    const group_ = group(uniform(uniformsOf(args)), (args.inputs ?? []).map((t) => t.buf), args.out.buf)
    return { pipeline: pipeline(code), group: group_, x, y, z: 1, label: `${scope}${kind} ${body.trim().split("\n")[0]!.trim()} ×${args.n}` }
  }
  /** One element-wise dispatch of `body` (see `elementwise`): a thread per element. */
  const ew = (body: string, args: ElementwiseArgs): Dispatch => bodyDispatch("ew", elementwise(body), body, args, Math.ceil(args.n / WG))
  /** One row-wise dispatch of `body` (see `rowwise`): a workgroup per row, `args.n` rows. */
  const rw = (body: string, args: ElementwiseArgs): Dispatch => bodyDispatch("rows", rowwise(body), body, args, args.n)

  const matmulOnce = (m: MatmulArgs, kTotal = 0): Dispatch => {
    const words = new ArrayBuffer(96)
    const u32 = new Uint32Array(words)
    const f32 = new Float32Array(words)
    const flags = (m.accumulate === true ? 1 : 0) | (m.bias !== undefined ? 2 : 0) | (m.addend !== undefined ? 4 : 0) | (m.relu === true ? 8 : 0)
    u32.set([
      m.M,
      m.N,
      m.K,
      m.Z2 ?? 1,
      kTotal,
      m.a.t.off,
      m.a.s1,
      m.a.s2,
      m.a.r,
      m.a.c,
      m.b.t.off,
      m.b.s1,
      m.b.s2,
      m.b.r,
      m.b.c,
      m.c.t.off,
      m.c.s1,
      m.c.s2,
      m.c.r,
      m.c.c,
      m.bias?.off ?? 0,
      m.addend?.off ?? 0,
      flags
    ])
    f32[23] = m.alpha ?? 1
    if (m.Z > MAX_X) throw new RangeError(`a matrix product over ${m.Z} batches (at most ${MAX_X})`)
    const group_ = group(uniform(words), [m.a.t.buf, m.b.t.buf, (m.bias ?? dummyT).buf, (m.addend ?? dummyT).buf], m.c.t.buf)
    const label = `${scope}matmul ${m.M}×${m.N}×${m.K} ×${m.Z}`
    // a 64×64 tile would be mostly idle
    if (m.M * m.N <= 16 && m.K >= 64) return { pipeline: pipeline(MATMUL, "dot"), group: group_, x: 1, y: 1, z: m.Z, label }
    if (m.M <= 4 || m.N <= 4) return { pipeline: pipeline(MATMUL, "small"), group: group_, x: Math.ceil((m.M * m.N) / 256), y: 1, z: m.Z, label }
    if (m.N <= 16 && m.M >= 64) return { pipeline: pipeline(MATMUL, "thin"), group: group_, x: Math.ceil(m.M / 128), y: 1, z: m.Z, label }
    return { pipeline: pipeline(MATMUL), group: group_, x: Math.ceil(m.N / 64), y: Math.ceil(m.M / 64), z: m.Z, label }
  }
  const dummyT: T = { buf: dummy, off: 0, n: 4 }

  /**
   * C = α·A·B (+ bias) (+ addend) (relu), per batch; with `reduce`, C (+)= Σ_z α·A_z·B_z instead
   * (through a buffer of partial products). A product of one batch with a long inner dimension
   * and a small output (a weight's gradient) is split along the inner dimension and reduced.
   */
  const matmul = (m: MatmulArgs & { readonly reduce?: boolean | undefined }): Dispatch[] => {
    const tiles = Math.ceil(m.M / 64) * Math.ceil(m.N / 64)
    if (m.reduce !== true && !(m.Z === 1 && m.K >= 256 && tiles < 64 && m.bias === undefined && m.addend === undefined && m.relu !== true)) {
      return [matmulOnce(m)]
    }
    // partial products [parts, M, N], then their sum into C; a split's parts short enough to keep
    // a few hundred workgroups busy, not one tile walking the whole inner dimension
    const split = m.reduce !== true
    const chunk = split ? Math.max(128, Math.ceil(m.K / Math.max(1, Math.floor(256 / tiles)))) : m.K
    const parts = split ? Math.ceil(m.K / chunk) : m.Z
    const partial = alloc(parts * m.M * m.N)
    const first = matmulOnce(
      {
        ...m,
        a: split ? { ...m.a, s1: chunk * m.a.c, s2: 0 } : m.a,
        b: split ? { ...m.b, s1: chunk * m.b.r, s2: 0 } : m.b,
        c: { t: partial, s1: m.M * m.N, s2: 0, r: m.N, c: 1 },
        Z: parts,
        Z2: split ? 1 : m.Z2,
        K: split ? chunk : m.K,
        bias: undefined,
        addend: undefined,
        relu: false,
        accumulate: false
      },
      split ? m.K : 0
    )
    const sum = ew(
      /* wgsl */ `
      var s = 0.0;
      for (var k = 0u; k < u.p0; k++) { s += x0[u.o0 + k * u.n + i]; }
      let at = u.oo + (i / u.p1) * u.p2 + (i % u.p1) * u.p3;
      if (u.p4 == 1u) { out[at] += s; } else { out[at] = s; }`,
      { out: m.c.t, inputs: [partial], n: m.M * m.N, p: [parts, m.N, m.c.r, m.c.c, m.accumulate === true ? 1 : 0] }
    )
    return [first, sum]
  }

  /** Σ over rows of a [rows, cols] array, added to `out` [cols]: partial sums over 256 groups of rows, then their sum. */
  const columnSum = (x: T, rows: number, cols: number, out: T): Dispatch[] => {
    const groups = Math.min(256, rows)
    const partial = alloc(groups * cols)
    return [
      ew(
        /* wgsl */ `
        let col = i % u.p0;
        let g = i / u.p0;
        var s = 0.0;
        for (var r = g; r < u.p1; r += u.p2) { s += x0[u.o0 + r * u.p0 + col]; }
        out[u.oo + i] = s;`,
        { out: partial, inputs: [x], n: groups * cols, p: [cols, rows, groups] }
      ),
      // a workgroup per column
      rw(
        /* wgsl */ `
        var s = 0.0;
        for (var g = l; g < u.p1; g += ROW) { s += x0[u.o0 + g * u.n + i]; }
        s = sumRow(s, l);
        if (l == 0u) { out[u.oo + i] += s; }`,
        { out, inputs: [partial], n: cols, p: [0, groups] }
      )
    ]
  }

  const encode = (encoder: GPUCommandEncoder, dispatches: ReadonlyArray<Dispatch>, repeat = 1) => {
    const pass = encoder.beginComputePass()
    for (let r = 0; r < repeat; r++) {
      for (const d of dispatches) {
        pass.setPipeline(d.pipeline)
        pass.setBindGroup(0, d.group)
        pass.dispatchWorkgroups(d.x, d.y, d.z)
      }
    }
    pass.end()
  }

  /** Read-back buffers by size, kept between runs (a decoding step reads back every token). */
  const staged = new Map<number, GPUBuffer[]>()
  const STAGED_SIZES = 8
  const takeStaging = (bytes: number): GPUBuffer => {
    const free = staged.get(bytes)
    staged.delete(bytes)
    if (free !== undefined) {
      staged.set(bytes, free)
      const b = free.pop()
      if (b !== undefined) return b
    }
    return device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
  }
  const giveStaging = (b: GPUBuffer) => {
    const list = staged.get(b.size) ?? []
    list.push(b)
    staged.delete(b.size)
    staged.set(b.size, list)
    while (staged.size > STAGED_SIZES) {
      const [oldest, bufs] = staged.entries().next().value!
      staged.delete(oldest)
      for (const x of bufs) x.destroy()
    }
  }
  /** Dispatch lists that ran once under a validation scope: a list recorded once does not turn invalid later. */
  const validated = new WeakSet<ReadonlyArray<Dispatch>>()

  const checked = async () => {
    if (checks.length > 0) {
      const pending = checks
      checks = []
      await Promise.all(pending)
    }
    if (errors.length > 0) throw new Error(`the generator's GPU kernels do not build: ${errors.join("\n")}`)
  }

  /**
   * Runs dispatches `repeat` times over (after clearing `clear`), then copies `reads` out and
   * maps them: their values.
   */
  const run = async (
    dispatches: ReadonlyArray<Dispatch>,
    options: { clear?: ReadonlyArray<GPUBuffer>; reads?: ReadonlyArray<T>; repeat?: number } = {}
  ): Promise<Float32Array[]> => {
    const encoder = device.createCommandEncoder()
    for (const b of options.clear ?? []) encoder.clearBuffer(b)
    if (dispatches.length > 0) encode(encoder, dispatches, options.repeat)
    const reads = options.reads ?? []
    const total = reads.reduce((s, t) => s + t.n, 0)
    const staging = total === 0 ? undefined : takeStaging(Math.ceil((total * 4) / 16) * 16)
    let at = 0
    for (const t of reads) {
      encoder.copyBufferToBuffer(t.buf, t.off * 4, staging!, at * 4, t.n * 4)
      at += t.n
    }
    await checked()
    const first = !validated.has(dispatches)
    if (first) device.pushErrorScope("validation")
    device.queue.submit([encoder.finish()])
    if (first) {
      const error = await device.popErrorScope()
      if (error !== null) throw new Error(`the generator's GPU kernels: ${error.message}`)
      validated.add(dispatches)
    }
    if (staging === undefined) {
      await device.queue.onSubmittedWorkDone()
      return []
    }
    await staging.mapAsync(GPUMapMode.READ)
    const all = new Float32Array(staging.getMappedRange().slice(0))
    staging.unmap()
    giveStaging(staging)
    at = 0
    return reads.map((t) => {
      const out = all.subarray(at, at + t.n)
      at += t.n
      return out
    })
  }

  /**
   * Each dispatch timed on its own (`repeat` runs in one submission, less one run's latency),
   * the times summed by label, the 15 largest as text under `title` (for profiles: a dispatch
   * that accumulates leaves its output changed).
   */
  const profile = async (title: string, dispatches: ReadonlyArray<Dispatch>, repeat = 20): Promise<string> => {
    await checked()
    const timed = async (d: Dispatch, times: number) => {
      const encoder = device.createCommandEncoder()
      encode(encoder, [d], times)
      const start = performance.now()
      device.queue.submit([encoder.finish()])
      await device.queue.onSubmittedWorkDone()
      return performance.now() - start
    }
    const byLabel = new Map<string, { ms: number; count: number }>()
    let total = 0
    for (const d of dispatches) {
      await timed(d, 1)
      const ms = Math.max(0, ((await timed(d, repeat + 1)) - (await timed(d, 1))) / repeat)
      const at = byLabel.get(d.label) ?? { ms: 0, count: 0 }
      byLabel.set(d.label, { ms: at.ms + ms, count: at.count + 1 })
      total += ms
    }
    const top = [...byLabel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15)
    return `profile ${title}: ${dispatches.length} dispatches, ${total.toFixed(3)} ms of kernels\n` +
      top.map(([label, { ms, count }]) => `  ${ms.toFixed(3).padStart(9)} ms ${String(count).padStart(4)}×  ${label.slice(0, 110)}\n`).join("")
  }

  const write = (t: T, values: Float32Array | Uint32Array) => {
    if (values.length > t.n) throw new RangeError(`writing ${values.length} values into ${t.n}`)
    device.queue.writeBuffer(t.buf, t.off * 4, values.buffer, values.byteOffset, values.byteLength)
  }

  return {
    device,
    bindable,
    alloc,
    view,
    /** A uniform buffer of `bytes`, owned as `alloc`'s buffers are (written with the device's queue). */
    uniformBuffer: (bytes: number): GPUBuffer => own(device.createBuffer({ size: bytes, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST })),
    ew,
    rw,
    matmul,
    columnSum,
    run,
    profile,
    within,
    /** The name `within` gives the dispatches being made ("" outside it). */
    scope: () => scope.replace(/: $/, ""),
    write,
    /**
     * Runs `build`, its buffers and uniforms owned by `o` (`release(o)` destroys them); what it
     * made is validated, and the next `run` reports what was not valid.
     */
    building: <A>(o: object, build: () => A): A => {
      owner = o
      device.pushErrorScope("validation")
      try {
        return build()
      } finally {
        checks.push(
          device.popErrorScope().then((e) => {
            if (e !== null) errors.push(e.message)
          })
        )
      }
    },
    /** Destroys the buffers that belong to `o`. */
    release: (o: object) => {
      for (const b of owned.get(o) ?? []) b.destroy()
      owned.delete(o)
    }
  }
}

/** A matrix operand laid out row-major [rows, cols] from `t`, with one batch level of stride `s1` (0: shared by every batch). */
export const rows = (t: T, cols: number, s1 = 0): Operand => ({ t, s1, s2: 0, r: cols, c: 1 })
/** The transpose of an operand (a swap of strides). */
export const transposed = (o: Operand): Operand => ({ ...o, r: o.c, c: o.r })
