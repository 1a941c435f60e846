/**
 * What one GPU operation costs from Node on Dawn, the floor under any WebGPU training step:
 * - tfjs: N small element-wise ops on the webgpu backend (enqueue, then one read-back);
 * - raw WebGPU, as tfjs issues work: per dispatch a uniform buffer write and a new bind group;
 * - raw WebGPU, as a fused engine would: bind groups made once, N dispatches in one compute pass;
 * - a read-back's round trip (mapAsync of a small buffer after an empty submit).
 * Each printed as µs per operation (N = OPS, median of REPS).
 *
 *   scripts/gpu/run.sh node --import tsx bench/gpu-dispatch.ts
 */
import { Effect } from "effect"
import * as Backend from "../src/plugins/policy/tfjs/backend.ts"

const OPS = Number(process.env["OPS"] ?? 400)
const REPS = Number(process.env["REPS"] ?? 7)
const SIZE = Number(process.env["SIZE"] ?? 32 * 192)

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!

const SHADER = /* wgsl */ `
struct P { n: u32, k: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) {
  if (id.x < p.n) { y[id.x] = max(x[id.x] * p.k, 0.0); }
}`

const main = async () => {
  const { tf, name } = await Effect.runPromise(Backend.make("webgpu"))
  console.log(`gpu-dispatch — backend ${name}, ${OPS} ops of ${SIZE} floats, median of ${REPS}`)
  // 1. tfjs
  const a = tf.randomNormal([SIZE])
  const tfjs: number[] = []
  const tfjsEnqueue: number[] = []
  for (let r = 0; r < REPS + 1; r++) {
    const t0 = performance.now()
    const out = tf.tidy(() => {
      let x = a
      for (let i = 0; i < OPS; i++) x = tf.relu(tf.mul(x, 0.999)) as typeof a
      return x
    })
    const t1 = performance.now()
    await out.data()
    out.dispose()
    if (r > 0) {
      tfjs.push(((performance.now() - t0) * 1000) / (2 * OPS))
      tfjsEnqueue.push(((t1 - t0) * 1000) / (2 * OPS))
    }
  }
  console.log(`  tfjs webgpu op             ${median(tfjs).toFixed(1)} µs (enqueue alone ${median(tfjsEnqueue).toFixed(1)} µs)`)

  // 2–4. raw WebGPU on tfjs's device
  const backend = tf.backend() as unknown as { device: GPUDevice }
  const device = backend.device
  const module = device.createShaderModule({ code: SHADER })
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } })
  const bytes = SIZE * 4
  const bufs = [0, 1].map(() => device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST }))
  const uniform = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST })
  device.queue.writeBuffer(uniform, 0, new Uint32Array([SIZE, 0]))
  const read = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
  const groups = [0, 1].map((i) =>
    device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: bufs[i]! } },
        { binding: 1, resource: { buffer: bufs[1 - i]! } },
        { binding: 2, resource: { buffer: uniform } }
      ]
    })
  )
  const finish = async (encoder: GPUCommandEncoder) => {
    encoder.copyBufferToBuffer(bufs[0]!, 0, read, 0, 16)
    device.queue.submit([encoder.finish()])
    await read.mapAsync(GPUMapMode.READ)
    read.unmap()
  }
  const groupsOf = Math.ceil(SIZE / 64)
  const perOp: number[] = []
  for (let r = 0; r < REPS + 1; r++) {
    const t0 = performance.now()
    const encoder = device.createCommandEncoder()
    for (let i = 0; i < OPS; i++) {
      const u = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST })
      device.queue.writeBuffer(u, 0, new Float32Array([0, 0.999]))
      const g = device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: bufs[i % 2]! } },
          { binding: 1, resource: { buffer: bufs[1 - (i % 2)]! } },
          { binding: 2, resource: { buffer: u } }
        ]
      })
      const pass = encoder.beginComputePass()
      pass.setPipeline(pipeline)
      pass.setBindGroup(0, g)
      pass.dispatchWorkgroups(groupsOf)
      pass.end()
    }
    await finish(encoder)
    if (r > 0) perOp.push(((performance.now() - t0) * 1000) / OPS)
  }
  console.log(`  raw, bind group per op     ${median(perOp).toFixed(1)} µs`)
  const fused: number[] = []
  const fusedEncode: number[] = []
  for (let r = 0; r < REPS + 1; r++) {
    const t0 = performance.now()
    const encoder = device.createCommandEncoder()
    const pass = encoder.beginComputePass()
    pass.setPipeline(pipeline)
    for (let i = 0; i < OPS; i++) {
      pass.setBindGroup(0, groups[i % 2]!)
      pass.dispatchWorkgroups(groupsOf)
    }
    pass.end()
    const t1 = performance.now()
    await finish(encoder)
    if (r > 0) {
      fused.push(((performance.now() - t0) * 1000) / OPS)
      fusedEncode.push(((t1 - t0) * 1000) / OPS)
    }
  }
  console.log(`  raw, bind groups made once ${median(fused).toFixed(1)} µs (encode alone ${median(fusedEncode).toFixed(1)} µs)`)
  const trip: number[] = []
  for (let r = 0; r < REPS + 1; r++) {
    const t0 = performance.now()
    await finish(device.createCommandEncoder())
    if (r > 0) trip.push((performance.now() - t0) * 1000)
  }
  console.log(`  read-back round trip       ${median(trip).toFixed(0)} µs`)
}

main().catch((e) => {
  console.error(e)
  process.exitCode = 1
})
