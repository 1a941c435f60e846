import { SqlClient } from "@effect/sql"
import { Effect, Schedule } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { type DatabaseUrl, scrub } from "./database.ts"
import { sqlError } from "./job-table.ts"
import { TrialFailed } from "./workflows.ts"

/**
 * Folders as content-addressed bundles in virl_blobs: how an evaluation's checkpoint travels to
 * runners that share no folder with the submitter.
 */

const BUNDLE_FORMAT = "virl-bundle/1"

/** Files as one text (their bytes in base64, names sorted) and its sha256: what virl_blobs holds. */
export const bundleFiles = (files: ReadonlyArray<readonly [string, Uint8Array]>): { readonly digest: string; readonly text: string } => {
  const sorted = [...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  const text = JSON.stringify({
    format: BUNDLE_FORMAT,
    files: Object.fromEntries(sorted.map(([name, bytes]) => [name, Buffer.from(bytes).toString("base64")]))
  })
  return { digest: createHash("sha256").update(text).digest("hex"), text }
}

/** Stores a bundle (once: it is named by its content). */
export const uploadBundle = (db: DatabaseUrl, bundle: { readonly digest: string; readonly text: string }) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`INSERT INTO virl_blobs (digest, content) VALUES (${bundle.digest}, ${bundle.text}) ON CONFLICT (digest) DO NOTHING`
  ).pipe(
    Effect.retry({ times: 5, while: (e) => e._tag === "SqlError", schedule: Schedule.spaced("500 millis") }),
    Effect.catchTag("SqlError", (e) => Effect.fail(sqlError(db, `cannot store the bundle ${bundle.digest.slice(0, 12)}`)(e)))
  )

/**
 * The files of a bundle written into `dir` (once: an existing `dir` is the bundle already; written
 * beside it and renamed into place, so a runner killed half-way leaves no partial folder).
 */
export const materializeBundle = (db: DatabaseUrl, digest: string, dir: string) =>
  Effect.gen(function*() {
    if (fs.existsSync(dir)) return dir
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ content: string }>`SELECT content FROM virl_blobs WHERE digest = ${digest}`
    const text = rows[0]?.content
    if (text === undefined) {
      return yield* new TrialFailed({ message: `${db.shown} has no bundle ${digest.slice(0, 12)} (the submitter stores it before submitting)` })
    }
    if (createHash("sha256").update(text).digest("hex") !== digest) {
      return yield* new TrialFailed({ message: `the bundle ${digest.slice(0, 12)} in ${db.shown} is damaged (its sha256 differs)` })
    }
    const bundle = JSON.parse(text) as { format: string; files: Record<string, string> }
    if (bundle.format !== BUNDLE_FORMAT) {
      return yield* new TrialFailed({ message: `the bundle ${digest.slice(0, 12)} has the format ${bundle.format}, not ${BUNDLE_FORMAT}` })
    }
    const partial = `${dir}.partial-${process.pid}`
    fs.rmSync(partial, { recursive: true, force: true })
    fs.mkdirSync(partial, { recursive: true })
    for (const [name, base64] of Object.entries(bundle.files)) {
      if (name.includes("/") || name.includes("\\") || name.startsWith(".")) {
        return yield* new TrialFailed({ message: `the bundle ${digest.slice(0, 12)} names a file outside its folder: ${name}` })
      }
      fs.writeFileSync(path.join(partial, name), Buffer.from(base64, "base64"))
    }
    fs.mkdirSync(path.dirname(dir), { recursive: true })
    try {
      fs.renameSync(partial, dir)
    } catch (e) {
      // another runner sharing this folder unpacked the same bundle first: theirs is whole (a rename is atomic)
      fs.rmSync(partial, { recursive: true, force: true })
      if (!fs.existsSync(dir)) throw e
    }
    return dir
  }).pipe(Effect.catchTag("SqlError", (e) =>
    Effect.fail(new TrialFailed({ message: `${db.shown}: cannot read the bundle ${digest.slice(0, 12)}: ${scrub(db, String(e))}` }))))
