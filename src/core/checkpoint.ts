import { Data, Effect, Either, ParseResult, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { OptimizerState } from "./optimizer.ts"
import type { Parameters } from "./parameters.ts"
import type { RngSnapshot } from "./random.ts"

export class CheckpointError extends Data.TaggedError("CheckpointError")<{ readonly path: string; readonly message: string }> {
  override toString(): string {
    return `${this.path}: ${this.message}`
  }
}

/** What produced a checkpoint: pretraining, SFT, PPO or rejection-sampling fine-tuning. */
export const PHASES = ["pretrain", "sft", "ppo", "rft"] as const
export type Phase = (typeof PHASES)[number]

/** A run's state at one point: enough to evaluate the policy or to resume training exactly. */
export interface Checkpoint {
  readonly policy: { readonly name: string; readonly config: unknown }
  readonly parameters: Parameters
  readonly optimizer?: OptimizerState
  readonly rng: RngSnapshot
  /** Where training stood: the phase and how many updates (PPO) or epochs (SFT) are done. */
  readonly progress: { readonly phase: Phase; readonly done: number }
  /** The run's resolved configuration and anything else worth keeping. */
  readonly meta: Readonly<Record<string, unknown>>
  /** What else training needs to continue bit for bit (rollout in progress, other generators); JSON. */
  readonly resume?: Readonly<Record<string, unknown>>
}

const RESUME_FILE = "resume.json"

const Table = Schema.Array(Schema.Struct({ name: Schema.String, offset: Schema.Number, length: Schema.Number }))

const Manifest = Schema.Struct({
  format: Schema.Literal("virl-checkpoint"),
  version: Schema.Literal(1),
  policy: Schema.Struct({ name: Schema.String, config: Schema.Unknown }),
  parameters: Table,
  optimizer: Schema.optional(Schema.Struct({ step: Schema.Number, moments: Table })),
  rng: Schema.Struct({ algorithm: Schema.String, seed: Schema.String, state: Schema.Array(Schema.Number) }),
  progress: Schema.Struct({ phase: Schema.Literal(...PHASES), done: Schema.Number }),
  meta: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  resume: Schema.optional(Schema.Literal(RESUME_FILE))
})

export const MANIFEST = "checkpoint.json"
const WEIGHTS = "weights.bin"
const MOMENTS = "optimizer.bin"

const pack = (arrays: ReadonlyArray<[string, Float32Array]>) => {
  let offset = 0
  const table = arrays.map(([name, a]) => {
    const entry = { name, offset, length: a.length }
    offset += a.length
    return entry
  })
  const all = new Float32Array(offset)
  arrays.forEach(([, a], i) => all.set(a, table[i].offset))
  return { table, bytes: Buffer.from(all.buffer) }
}

/**
 * Writes a checkpoint folder (manifest, weights, optimizer moments) beside `dir` and renames it
 * into place, so a crash mid-write leaves the previous checkpoint intact.
 */
export const saveCheckpoint = (dir: string, checkpoint: Checkpoint): Effect.Effect<void, CheckpointError> =>
  Effect.try({
    try: () => {
      const staging = `${dir}.partial-${process.pid}`
      fs.rmSync(staging, { recursive: true, force: true })
      fs.mkdirSync(staging, { recursive: true })
      const weights = pack([...checkpoint.parameters])
      fs.writeFileSync(path.join(staging, WEIGHTS), weights.bytes)
      let optimizer: { step: number; moments: typeof weights.table } | undefined
      if (checkpoint.optimizer !== undefined) {
        const moments = pack([...checkpoint.optimizer.moments].flatMap(([k, v]) => [[`${k}/m`, v.m], [`${k}/v`, v.v]] as Array<[string, Float32Array]>))
        fs.writeFileSync(path.join(staging, MOMENTS), moments.bytes)
        optimizer = { step: checkpoint.optimizer.step, moments: moments.table }
      }
      if (checkpoint.resume !== undefined) fs.writeFileSync(path.join(staging, RESUME_FILE), JSON.stringify(checkpoint.resume))
      const manifest = {
        format: "virl-checkpoint",
        version: 1,
        policy: checkpoint.policy,
        parameters: weights.table,
        ...(optimizer === undefined ? {} : { optimizer }),
        rng: checkpoint.rng,
        progress: checkpoint.progress,
        meta: checkpoint.meta,
        ...(checkpoint.resume === undefined ? {} : { resume: RESUME_FILE })
      }
      fs.writeFileSync(path.join(staging, MANIFEST), JSON.stringify(manifest, null, 1))
      const old = `${dir}.old-${process.pid}`
      if (fs.existsSync(dir)) fs.renameSync(dir, old)
      fs.renameSync(staging, dir)
      fs.rmSync(old, { recursive: true, force: true })
    },
    catch: (e) => new CheckpointError({ path: dir, message: `cannot write checkpoint: ${(e as Error).message}` })
  })

const readFloats = (file: string, table: ReadonlyArray<{ name: string; offset: number; length: number }>): Map<string, Float32Array> => {
  const buffer = fs.readFileSync(file)
  const needed = table.reduce((m, e) => Math.max(m, e.offset + e.length), 0) * 4
  if (buffer.length !== needed) throw new Error(`${path.basename(file)} holds ${buffer.length} bytes, the manifest describes ${needed}`)
  const all = new Float32Array(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.length))
  const out = new Map<string, Float32Array>()
  for (const e of table) {
    const a = all.slice(e.offset, e.offset + e.length)
    if (a.some((x) => !Number.isFinite(x))) throw new Error(`${path.basename(file)}: ${e.name} holds non-finite values`)
    out.set(e.name, a)
  }
  return out
}

const readJson = (file: string): Record<string, unknown> => {
  let value: unknown
  try {
    value = JSON.parse(fs.readFileSync(file, "utf8"))
  } catch (e) {
    throw new Error(`${path.basename(file)}: ${(e as Error).message}`)
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error(`${path.basename(file)} does not hold a JSON object`)
  return value as Record<string, unknown>
}

/**
 * Whether the process that names a staging folder (`….partial-PID`, `….old-PID`) still runs —
 * then the folder is its write in progress (another runner or seed sharing the folder), not a
 * leftover. This process's own are leftovers: its writes finish before anything else runs.
 */
const writerAlive = (name: string): boolean => {
  const pid = Number(/-(\d+)$/.exec(name)?.[1])
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    // EPERM: alive, but another user's
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Finishes what an interrupted `saveCheckpoint` left: killed between its two renames, the folder
 * is missing and the previous checkpoint waits under `DIR.old-PID`; it is put back. Leftover
 * staging folders are removed — those of dead processes only: a live one's is a write under way.
 */
const recover = (dir: string): void => {
  const parent = path.dirname(dir)
  if (!fs.existsSync(parent)) return
  const base = path.basename(dir)
  const leftovers = fs.readdirSync(parent).filter((f) => (f.startsWith(`${base}.old-`) || f.startsWith(`${base}.partial-`)) && !writerAlive(f))
  if (leftovers.length === 0) return
  if (!fs.existsSync(path.join(dir, MANIFEST))) {
    const previous = leftovers.find((f) => f.startsWith(`${base}.old-`) && fs.existsSync(path.join(parent, f, MANIFEST)))
    if (previous !== undefined) {
      fs.rmSync(dir, { recursive: true, force: true })
      fs.renameSync(path.join(parent, previous), dir)
    }
  }
  for (const f of leftovers) fs.rmSync(path.join(parent, f), { recursive: true, force: true })
}

/** Whether `dir` holds a checkpoint (after finishing an interrupted write; see `recover`). */
export const isCheckpoint = (dir: string): boolean => {
  recover(dir)
  return fs.existsSync(path.join(dir, MANIFEST))
}

export const loadCheckpoint = (dir: string): Effect.Effect<Checkpoint, CheckpointError> =>
  Effect.gen(function*() {
    const manifestFile = path.join(dir, MANIFEST)
    if (!isCheckpoint(dir)) return yield* new CheckpointError({ path: dir, message: `not a checkpoint: ${MANIFEST} is missing` })
    const raw = yield* Effect.try({
      try: () => JSON.parse(fs.readFileSync(manifestFile, "utf8")) as unknown,
      catch: (e) => new CheckpointError({ path: manifestFile, message: `corrupt manifest: ${(e as Error).message}` })
    })
    const decoded = Schema.decodeUnknownEither(Manifest)(raw)
    if (Either.isLeft(decoded)) {
      return yield* new CheckpointError({ path: manifestFile, message: ParseResult.TreeFormatter.formatErrorSync(decoded.left) })
    }
    const m = decoded.right
    return yield* Effect.try({
      try: (): Checkpoint => {
        const parameters = readFloats(path.join(dir, WEIGHTS), m.parameters)
        let optimizer: OptimizerState | undefined
        if (m.optimizer !== undefined) {
          const flat = readFloats(path.join(dir, MOMENTS), m.optimizer.moments)
          const moments = new Map<string, { m: Float32Array; v: Float32Array }>()
          for (const [k, v] of flat) {
            const [name, which] = [k.slice(0, k.lastIndexOf("/")), k.slice(k.lastIndexOf("/") + 1)]
            const entry = moments.get(name) ?? { m: new Float32Array(v.length), v: new Float32Array(v.length) }
            if (which === "m") entry.m = v
            else entry.v = v
            moments.set(name, entry)
          }
          optimizer = { step: m.optimizer.step, pending: 0, moments }
        }
        return {
          policy: m.policy,
          parameters,
          ...(optimizer === undefined ? {} : { optimizer }),
          rng: m.rng,
          progress: m.progress,
          meta: m.meta,
          ...(m.resume === undefined ? {} : { resume: readJson(path.join(dir, m.resume)) })
        }
      },
      catch: (e) => new CheckpointError({ path: dir, message: `corrupt checkpoint: ${(e as Error).message}` })
    })
  })
