import { parentPort, workerData } from "node:worker_threads"
import { type RenderJob, renderSites } from "./generate.ts"

const job = workerData as RenderJob
const results = await renderSites(job)
parentPort?.postMessage(
  results,
  results.map((r) => r.jpeg.buffer as ArrayBuffer)
)
