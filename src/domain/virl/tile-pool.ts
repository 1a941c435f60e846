import { Effect } from "effect"
import * as os from "node:os"
import { isMainThread, Worker } from "node:worker_threads"
import { provideSharedBuffers } from "../../core/shared-memory.ts"
import type { RgbImage } from "./projection.ts"
import { integerSetting } from "../../core/settings.ts"

export interface TileJob {
  readonly id: number
  /** Panorama pixels in a SharedArrayBuffer: workers read them without a copy. */
  readonly pano: RgbImage
  /** Names the panorama (dataset and id), so a worker copies its pixels once for several views. */
  readonly panoKey: string
  readonly rotation: number
  readonly heading: number
  readonly fov: number
  readonly viewSize: number
  readonly resolution: number
  /** Where the tile goes: a grid in shared memory and the corner of the tile's cell. */
  readonly target: { readonly grid: Uint8Array; readonly gridWidth: number; readonly left: number; readonly top: number }
}

/** Asks a worker for a zeroed shared buffer with its pages already mapped. */
export interface MemoryJob {
  readonly id: number
  readonly bytes: number
}

export type PoolJob = TileJob | MemoryJob

/** What a worker answers: the job's id, and for a memory job its buffer. */
export interface PoolReply {
  readonly id: number
  readonly buffer?: SharedArrayBuffer
}

/** Buffers from this size on are prepared ahead (a fresh one's pages fault in on its first write; docs/measurements.md). */
const PREPARED_FROM = 1 << 20

/**
 * Worker threads that cut and resize street-view tiles, so the four tiles of an observation
 * (and the tiles of N environments in lock-step) use every core. Idle workers do not keep the
 * process alive.
 */
export class TilePool {
  private readonly workers: Worker[] = []
  private readonly idle: Worker[] = []
  private readonly queue: Array<{ job: PoolJob; resolve: (reply: PoolReply) => void; reject: (e: Error) => void }> = []
  private readonly pending = new Map<number, { worker: Worker; resolve: (reply: PoolReply) => void; reject: (e: Error) => void }>()
  private nextId = 0
  /** Jobs that wait until no tile is waiting. */
  private readonly background: Array<{ job: PoolJob; resolve: (reply: PoolReply) => void; reject: (e: Error) => void }> = []
  /** Per size, a zeroed buffer whose pages a worker has mapped, or the promise of one. */
  private readonly spares = new Map<number, SharedArrayBuffer | Promise<unknown>>()

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL("./tile-worker.mjs", import.meta.url))
      worker.on("message", (reply: PoolReply) => {
        const task = this.pending.get(reply.id)
        if (task === undefined) return
        this.pending.delete(reply.id)
        task.resolve(reply)
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
    const next = this.queue.shift() ?? this.background.shift()
    if (next === undefined) {
      worker.unref()
      this.idle.push(worker)
    } else this.start(worker, next.job, next.resolve, next.reject)
  }

  private start(worker: Worker, job: PoolJob, resolve: (reply: PoolReply) => void, reject: (e: Error) => void): void {
    worker.ref()
    this.pending.set(job.id, { worker, resolve, reject })
    worker.postMessage(job)
  }

  private submit(job: Omit<TileJob, "id">): Promise<PoolReply> {
    return new Promise((resolve, reject) => {
      const full = { ...job, id: this.nextId++ }
      const worker = this.idle.pop()
      if (worker === undefined) this.queue.push({ job: full, resolve, reject })
      else this.start(worker, full, resolve, reject)
    })
  }

  /**
   * A memory job, started when a worker finishes a tile and no other tile waits: never ahead of
   * the tiles that are about to need the worker (they are submitted right after the panorama
   * they need is decoded, which is when its buffer is asked for).
   */
  private prepare(bytes: number): Promise<PoolReply> {
    return new Promise((resolve, reject) => {
      this.background.push({ job: { bytes, id: this.nextId++ }, resolve, reject })
    })
  }

  /** Cuts and resizes one view into its cell of `job.target`; resolves when it is written. */
  render(job: Omit<TileJob, "id">): Promise<void> {
    return this.submit(job).then(() => undefined)
  }

  /**
   * A zeroed shared buffer of `bytes`: for a large one, the buffer a worker prepared after the
   * last request of this size (its pages mapped while this thread did other work: decoding the
   * panorama, answering the policy), and the next one is asked for. Always a fresh buffer.
   */
  sharedBuffer(bytes: number): SharedArrayBuffer {
    if (bytes < PREPARED_FROM) return new SharedArrayBuffer(bytes)
    const spare = this.spares.get(bytes)
    const buffer = spare instanceof SharedArrayBuffer ? spare : new SharedArrayBuffer(bytes)
    if (!(spare instanceof Promise)) {
      const next = this.prepare(bytes).then(
        (reply) => {
          if (reply.buffer !== undefined && this.spares.get(bytes) === next) this.spares.set(bytes, reply.buffer)
        },
        () => this.spares.delete(bytes)
      )
      this.spares.set(bytes, next)
    }
    return buffer
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
  const set = integerSetting("VIRL_TILE_THREADS")
  if (set !== undefined && set >= 0) return set
  const cores = os.availableParallelism()
  return Math.min(12, Math.max(Math.min(4, cores), cores - 2))
}

/** One pool per process, sized to the cores (none on a single core); for tools outside a run's scope. */
export const sharedTilePool = (): TilePool | undefined => {
  if (poolSize() < 2) return undefined
  if (shared === undefined) {
    const pool = new TilePool(poolSize())
    shared = pool
    // decoded panoramas go into buffers the pool's workers mapped ahead
    provideSharedBuffers((bytes) => pool.sharedBuffer(bytes))
  }
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
      provideSharedBuffers(undefined)
      return pool.close()
    })
)
