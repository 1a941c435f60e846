import { Effect } from "effect"
import * as os from "node:os"
import { isMainThread, Worker } from "node:worker_threads"
import type { RgbImage } from "./projection.ts"

export interface TileJob {
  readonly id: number
  /** Panorama pixels in a SharedArrayBuffer: workers read them without a copy. */
  readonly pano: RgbImage
  readonly rotation: number
  readonly heading: number
  readonly fov: number
  readonly viewSize: number
  readonly resolution: number
  /** Where the tile goes: a grid in shared memory and the corner of the tile's cell. */
  readonly target: { readonly grid: Uint8Array; readonly gridWidth: number; readonly left: number; readonly top: number }
}

/**
 * Worker threads that cut and resize street-view tiles, so the four tiles of an observation
 * (and the tiles of N environments in lock-step) use every core. Idle workers do not keep the
 * process alive.
 */
export class TilePool {
  private readonly workers: Worker[] = []
  private readonly idle: Worker[] = []
  private readonly queue: Array<{ job: TileJob; resolve: () => void; reject: (e: Error) => void }> = []
  private readonly pending = new Map<number, { worker: Worker; resolve: () => void; reject: (e: Error) => void }>()
  private nextId = 0

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL("./tile-worker.mjs", import.meta.url))
      worker.on("message", (id: number) => {
        const task = this.pending.get(id)
        if (task === undefined) return
        this.pending.delete(id)
        task.resolve()
        this.release(worker)
      })
      worker.on("error", (e) => {
        for (const [id, task] of this.pending) {
          if (task.worker !== worker) continue
          this.pending.delete(id)
          task.reject(e)
        }
      })
      worker.unref()
      this.workers.push(worker)
      this.idle.push(worker)
    }
  }

  private release(worker: Worker): void {
    const next = this.queue.shift()
    if (next === undefined) {
      worker.unref()
      this.idle.push(worker)
    } else this.start(worker, next.job, next.resolve, next.reject)
  }

  private start(worker: Worker, job: TileJob, resolve: () => void, reject: (e: Error) => void): void {
    worker.ref()
    this.pending.set(job.id, { worker, resolve, reject })
    worker.postMessage(job)
  }

  /** Cuts and resizes one view into its cell of `job.target`; resolves when it is written. */
  render(job: Omit<TileJob, "id">): Promise<void> {
    return new Promise((resolve, reject) => {
      const full = { ...job, id: this.nextId++ }
      const worker = this.idle.pop()
      if (worker === undefined) this.queue.push({ job: full, resolve, reject })
      else this.start(worker, full, resolve, reject)
    })
  }

  close(): Promise<void> {
    return Promise.all(this.workers.map((w) => w.terminate())).then(() => undefined)
  }
}

let shared: TilePool | undefined
let users = 0

// in a worker thread (an environment of the workers sharding) the thread itself is the parallelism;
// VIRL_TILE_THREADS sets the size; by default every core up to 4, then all but two up to 12 (on a
// 16-core host, 12 threads instead of 4 gave 1.37x the environment steps and 1.41x the evaluation
// episodes per second at resolution 224; npm run bench:sharding)
const poolSize = (): number => {
  if (!isMainThread) return 1
  const set = Number(process.env["VIRL_TILE_THREADS"])
  if (process.env["VIRL_TILE_THREADS"] !== undefined && Number.isInteger(set) && set >= 0) return set
  const cores = os.availableParallelism()
  return Math.min(12, Math.max(Math.min(4, cores), cores - 2))
}

/** One pool per process, sized to the cores (none on a single core); for tools outside a run's scope. */
export const sharedTilePool = (): TilePool | undefined => {
  if (poolSize() < 2) return undefined
  shared ??= new TilePool(poolSize())
  return shared
}

/**
 * The process's pool as a resource of the caller's scope: shared by the environments open at once,
 * its threads terminated when the last of them closes (a run's end, an interruption).
 */
export const acquireTilePool = Effect.acquireRelease(
  Effect.sync(() => {
    users += 1
    return sharedTilePool()
  }),
  () =>
    Effect.promise(() => {
      users -= 1
      if (users > 0 || shared === undefined) return Promise.resolve()
      const pool = shared
      shared = undefined
      return pool.close()
    })
)
