import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { writeFileAtomic } from "../../core/files.ts"
import { Tracker, type TrackerService } from "../../core/tracker.ts"

/** Appends one record, stamped with the time, as a JSON line. */
export const appendRecord = (file: string, record: Readonly<Record<string, unknown>>): void =>
  fs.appendFileSync(file, `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`)

/**
 * Metrics as JSON lines in RUN_DIR/metrics.jsonl, the summary in RUN_DIR/summary.json. Always on.
 * Training's own records are not repeated here: each arm keeps them in its folder's metrics.jsonl.
 */
export const make = (runDir: string): TrackerService => {
  fs.mkdirSync(runDir, { recursive: true })
  const file = path.join(runDir, "metrics.jsonl")
  return {
    log: (record) => Effect.sync(() => (record["kind"] === "train" ? undefined : appendRecord(file, record))),
    summary: (record) => Effect.sync(() => writeFileAtomic(path.join(runDir, "summary.json"), JSON.stringify(record, null, 2))),
    close: Effect.void
  }
}

export const layer = (runDir: string) => Layer.sync(Tracker, () => make(runDir))
