import { parentPort } from "node:worker_threads"
import { perspectiveView } from "./projection.ts"
import { resizeBicubic } from "./resize.ts"
import type { TileJob } from "./tile-pool.ts"

parentPort?.on("message", (job: TileJob) => {
  const view = perspectiveView(job.pano, { heading: job.heading, fov: job.fov, width: job.viewSize, height: job.viewSize, northRotation: job.rotation })
  const tile = resizeBicubic(view, job.resolution, job.resolution)
  if (job.target !== undefined) {
    const { grid, gridWidth, left, top } = job.target
    const rowBytes = tile.width * 3
    for (let y = 0; y < tile.height; y++) grid.set(tile.rgb.subarray(y * rowBytes, (y + 1) * rowBytes), ((top + y) * gridWidth + left) * 3)
    parentPort?.postMessage({ id: job.id, width: tile.width, height: tile.height, rgb: null })
    return
  }
  const rgb = tile.rgb.byteOffset === 0 && tile.rgb.byteLength === tile.rgb.buffer.byteLength ? tile.rgb : tile.rgb.slice()
  parentPort?.postMessage({ id: job.id, width: tile.width, height: tile.height, rgb }, [rgb.buffer as ArrayBuffer])
})
