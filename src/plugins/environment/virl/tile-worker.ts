import { parentPort } from "node:worker_threads"
import { perspectiveView } from "./projection.ts"
import { resizeBicubic } from "./resize.ts"
import type { TileJob } from "./tile-pool.ts"

/** The 640² view, reused from one job to the next. */
let view = new Uint8ClampedArray(0)

parentPort?.on("message", (job: TileJob) => {
  if (view.length !== job.viewSize * job.viewSize * 3) view = new Uint8ClampedArray(job.viewSize * job.viewSize * 3)
  const request = { heading: job.heading, fov: job.fov, width: job.viewSize, height: job.viewSize, northRotation: job.rotation }
  const { grid, gridWidth, left, top } = job.target
  resizeBicubic(perspectiveView(job.pano, request, view), job.resolution, job.resolution, { rgb: grid, stride: gridWidth * 3, offset: (top * gridWidth + left) * 3 })
  parentPort?.postMessage(job.id)
})
