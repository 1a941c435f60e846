import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { writeFileAtomic } from "../../core/files.ts"
import { metricsOf, type TrackerService } from "../../core/tracker.ts"

/**
 * TensorBoard's event files, written as records arrive: RUN_DIR/tb/<arm>/seed-<S>/
 * events.out.tfevents.* (one TensorBoard run per arm and seed; `tensorboard --logdir RUN_DIR/tb`).
 * No maintained npm package writes them (tfjs-node's summary writer needs libtensorflow), so this
 * file does: TFRecord framing (length, masked CRC-32C, bytes, masked CRC-32C) around `Event`
 * protocol buffers holding scalar summaries — the few fields of tensorflow/core/util/event.proto
 * and summary.proto that scalars use. Tested by reading them back with TensorBoard's own reader.
 * Scalars are named and stepped as `metricsOf` (core/tracker.ts) says.
 */

// CRC-32C (Castagnoli), reflected, as TFRecord uses
const CRC_TABLE = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

export const crc32c = (bytes: Uint8Array): number => {
  let c = 0xffffffff
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

const masked = (crc: number): number => ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0

/** One TFRecord: the length, its masked CRC, the data, the data's masked CRC. */
export const tfRecord = (data: Uint8Array): Buffer => {
  const out = Buffer.alloc(16 + data.length)
  out.writeBigUInt64LE(BigInt(data.length), 0)
  out.writeUInt32LE(masked(crc32c(out.subarray(0, 8))), 8)
  out.set(data, 12)
  out.writeUInt32LE(masked(crc32c(data)), 12 + data.length)
  return out
}

const varint = (value: number | bigint): number[] => {
  let v = BigInt(value)
  if (v < 0n) v += 1n << 64n
  const out: number[] = []
  do {
    let byte = Number(v & 0x7fn)
    v >>= 7n
    if (v > 0n) byte |= 0x80
    out.push(byte)
  } while (v > 0n)
  return out
}

const field = (number: number, wire: number) => varint((number << 3) | wire)

const lengthDelimited = (number: number, bytes: Uint8Array): number[] => [...field(number, 2), ...varint(bytes.length), ...bytes]

/** An `Event` protocol buffer: wall_time (1, double), step (2, int64), file_version (3) or summary (5) of scalar values (tag 1, simple_value 2). */
export const eventProto = (event: {
  readonly wallTime: number
  readonly step: number
  readonly fileVersion?: string
  readonly scalars?: ReadonlyArray<readonly [string, number]>
}): Uint8Array => {
  const time = Buffer.alloc(8)
  time.writeDoubleLE(event.wallTime)
  const out = [...field(1, 1), ...time, ...field(2, 0), ...varint(Math.round(event.step))]
  if (event.fileVersion !== undefined) out.push(...lengthDelimited(3, Buffer.from(event.fileVersion, "utf8")))
  if (event.scalars !== undefined) {
    const values = event.scalars.flatMap(([tag, value]) => {
      const v = Buffer.alloc(4)
      v.writeFloatLE(value)
      return lengthDelimited(1, Uint8Array.from([...lengthDelimited(1, Buffer.from(tag, "utf8")), ...field(2, 5), ...v]))
    })
    out.push(...lengthDelimited(5, Uint8Array.from(values)))
  }
  return Uint8Array.from(out)
}

/** An events file of its own (TensorBoard reads every file in a run's folder, in name order). */
export class EventFile {
  readonly file: string
  constructor(dir: string, now = Date.now()) {
    fs.mkdirSync(dir, { recursive: true })
    this.file = path.join(dir, `events.out.tfevents.${Math.floor(now / 1000)}.${os.hostname()}.${process.pid}.${EventFile.count++}`)
    fs.writeFileSync(this.file, tfRecord(eventProto({ wallTime: now / 1000, step: 0, fileVersion: "brain.Event:2" })))
  }
  static count = 0
  scalars(step: number, scalars: ReadonlyArray<readonly [string, number]>, now = Date.now()): void {
    if (scalars.length > 0) fs.appendFileSync(this.file, tfRecord(eventProto({ wallTime: now / 1000, step, scalars })))
  }
}

/** The folder of an arm and seed's events (records without them: the experiment's own). */
export const runFolder = (root: string, record: Readonly<Record<string, unknown>>): string =>
  record["arm"] === undefined ? path.join(root, "experiment") : path.join(root, String(record["arm"]), `seed-${String(record["seed"] ?? 0)}`)

/**
 * A resumed arm redoes its training steps from its last checkpoint (its metrics.jsonl is trimmed to
 * match); the events an earlier process wrote for the steps redone are dropped from its files,
 * so TensorBoard shows each step once. `prefix` is the training records' tag prefix (`ppo/`).
 */
export const dropRedone = (dir: string, prefix: string, from: number, except: string): void => {
  for (const name of fs.readdirSync(dir).filter((f) => f.startsWith("events.out.tfevents.")).map((f) => path.join(dir, f))) {
    if (name === except) continue
    const events = readEvents(name)
    const kept = events.flatMap((e) => {
      if (e.fileVersion !== undefined || e.step < from) return [e]
      const scalars = e.scalars.filter(([tag]) => !tag.startsWith(prefix))
      return scalars.length === 0 ? [] : [{ ...e, scalars }]
    })
    if (kept.length === events.length && kept.every((e, i) => e.scalars.length === events[i]!.scalars.length)) continue
    writeFileAtomic(name, Buffer.concat(kept.map((e) => tfRecord(eventProto(e)))))
  }
}

/** Event files under RUN_DIR/tb; a file that cannot be written ends in one warning, never a failed run. */
export const make = (runDir: string, warn: (line: string) => void): TrackerService => {
  const root = path.join(runDir, "tb")
  const files = new Map<string, EventFile>()
  // the folders whose earlier events have been checked for steps this process redoes
  const resumed = new Set<string>()
  let broken = false
  return {
    log: (record) =>
      Effect.sync(() => {
        if (broken) return
        try {
          const dir = runFolder(root, record)
          let file = files.get(dir)
          if (file === undefined) {
            file = new EventFile(dir)
            files.set(dir, file)
          }
          const { step, scalars } = metricsOf(record)
          const kind = String(record["kind"] ?? "train")
          if (kind === "train" && !resumed.has(dir)) {
            // this process's first training step here: what an earlier process logged from it on is redone
            resumed.add(dir)
            dropRedone(dir, `${String(record["phase"] ?? "train")}/`, step, file.file)
          }
          file.scalars(step, scalars)
        } catch (e) {
          broken = true
          warn(`TensorBoard: cannot write under ${root} (${(e as Error).message}); the run goes on, its JSONL record is complete`)
        }
      }),
    summary: () => Effect.void,
    close: Effect.void
  }
}

/** The events of a file, checked against their CRCs: each event's wall time, step and scalars (or file version). */
export const readEvents = (file: string) => {
  const bytes = fs.readFileSync(file)
  const events: Array<{ wallTime: number; step: number; fileVersion?: string; scalars: Array<[string, number]> }> = []
  let at = 0
  const readVarint = (buf: Buffer, pos: { at: number }): bigint => {
    let v = 0n
    let shift = 0n
    for (;;) {
      const b = buf[pos.at++]
      v |= BigInt(b & 0x7f) << shift
      if ((b & 0x80) === 0) return v
      shift += 7n
    }
  }
  while (at < bytes.length) {
    const length = Number(bytes.readBigUInt64LE(at))
    if (bytes.readUInt32LE(at + 8) !== masked(crc32c(bytes.subarray(at, at + 8)))) throw new Error(`${file}: bad length CRC at byte ${at}`)
    const data = bytes.subarray(at + 12, at + 12 + length)
    if (bytes.readUInt32LE(at + 12 + length) !== masked(crc32c(data))) throw new Error(`${file}: bad data CRC at byte ${at}`)
    at += 16 + length
    const event: (typeof events)[number] = { wallTime: 0, step: 0, scalars: [] }
    const pos = { at: 0 }
    while (pos.at < data.length) {
      const key = Number(readVarint(data, pos))
      const [number, wire] = [key >> 3, key & 7]
      if (wire === 1) {
        if (number === 1) event.wallTime = data.readDoubleLE(pos.at)
        pos.at += 8
      } else if (wire === 0) {
        const v = readVarint(data, pos)
        if (number === 2) event.step = Number(v)
      } else if (wire === 2) {
        const n = Number(readVarint(data, pos))
        const sub = data.subarray(pos.at, pos.at + n)
        pos.at += n
        if (number === 3) event.fileVersion = sub.toString("utf8")
        if (number === 5) {
          const p = { at: 0 }
          while (p.at < sub.length) {
            readVarint(sub, p)
            const m = Number(readVarint(sub, p))
            const value = sub.subarray(p.at, p.at + m)
            p.at += m
            const q = { at: 0 }
            let tag = ""
            let simple = Number.NaN
            while (q.at < value.length) {
              const k = Number(readVarint(value, q))
              if (k === 0x0a) {
                const len = Number(readVarint(value, q))
                tag = value.subarray(q.at, q.at + len).toString("utf8")
                q.at += len
              } else if (k === 0x15) {
                simple = value.readFloatLE(q.at)
                q.at += 4
              } else throw new Error(`${file}: unexpected field ${k} in a summary value`)
            }
            event.scalars.push([tag, simple])
          }
        }
      } else throw new Error(`${file}: unexpected wire type ${wire}`)
    }
    events.push(event)
  }
  return events
}
