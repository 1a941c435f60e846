import { parentPort } from "node:worker_threads"
import { simdTile } from "./pixels.ts"
import { perspectiveView } from "./projection.ts"
import { resizeBicubic } from "./resize.ts"
import type { PoolJob, PoolReply } from "./tile-pool.ts"

/** The 640² view, reused from one job to the next. */
let view = new Uint8ClampedArray(0)

parentPort?.on("message", (job: PoolJob) => {
  if ("bytes" in job) {
    // a zeroed buffer with every page touched, so that whoever writes it next does not fault
    const buffer = new SharedArrayBuffer(job.bytes)
    const bytes = new Uint8Array(buffer)
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = 0
    parentPort?.postMessage({ id: job.id, buffer } satisfies PoolReply)
    return
  }
  if (view.length !== job.viewSize * job.viewSize * 3) view = new Uint8ClampedArray(job.viewSize * job.viewSize * 3)
  const request = { heading: job.heading, fov: job.fov, width: job.viewSize, height: job.viewSize, northRotation: job.rotation }
  const { grid, gridWidth, left, top } = job.target
  const target = { rgb: grid, stride: gridWidth * 3, offset: (top * gridWidth + left) * 3 }
  if (simdTile(job.pano, request, job.resolution, target, job.panoKey) === undefined) {
    resizeBicubic(perspectiveView(job.pano, request, view), job.resolution, job.resolution, target)
  }
  parentPort?.postMessage({ id: job.id } satisfies PoolReply)
})
