import { ShardingConfig, SqlMessageStorage, SqlRunnerStorage } from "@effect/cluster"
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Schedule } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { DatabaseError, type DatabaseUrl, scrub } from "./database.ts"

/**
 * virl's tables beside the cluster's: the schema's version (virl_meta), one row per durable job
 * (virl_jobs: what `virl sweep --status` shows, and each runner's fenced claim on a job), and
 * content-addressed bundles (virl_blobs, see bundles.ts).
 */

/** The version of the tables virl keeps beside the cluster's; a runner refuses any other. */
export const SCHEMA = "virl-cluster/3 (@effect/cluster 0.60.2, @effect/workflow 0.19.1)"
const VIRL_VERSION = (JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, "../../package.json"), "utf8")) as { version: string }).version
export type TrialState = "pending" | "running" | "done" | "failed"

export interface TrialRow {
  readonly executionId: string
  readonly sweep: string
  readonly label: string
  readonly state: TrialState
  readonly runner: string | null
  readonly attempts: number
  readonly submittedAt: number
  readonly startedAt: number | null
  readonly finishedAt: number | null
  readonly message: string | null
}

export const sqlError = (db: DatabaseUrl, what: string) => (e: unknown) => new DatabaseError({ message: `${db.shown}: ${what}: ${scrub(db, String(e))}` })

/**
 * virl's own tables beside the cluster's: its schema's version, and one row per trial for
 * `virl sweep --status`. Refuses a database set up by another version.
 */
export const ensureSchema = (db: DatabaseUrl) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // runners and submitters starting at once: one of them creates the tables (PostgreSQL's
    // CREATE TABLE IF NOT EXISTS is not safe against a concurrent one)
    if (db.kind === "postgres") yield* sql`SELECT pg_advisory_xact_lock(7021926)`
    yield* sql`CREATE TABLE IF NOT EXISTS virl_meta (name VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)`
    yield* sql`INSERT INTO virl_meta (name, value) VALUES ('schema', ${SCHEMA}) ON CONFLICT (name) DO NOTHING`
    yield* sql`INSERT INTO virl_meta (name, value) VALUES ('virl', ${VIRL_VERSION}) ON CONFLICT (name) DO NOTHING`
    const rows = yield* sql<{ name: string; value: string }>`SELECT name, value FROM virl_meta`
    const found = Object.fromEntries(rows.map((r) => [r.name, r.value]))
    if (found["schema"] !== SCHEMA) {
      return yield* new DatabaseError({
        message: `${db.shown} was set up by virl ${found["virl"] ?? "?"} with the schema ${
          JSON.stringify(found["schema"])
        }; this is virl ${VIRL_VERSION} (schema ${JSON.stringify(SCHEMA)}): use another database, or the virl that made it`
      })
    }
    yield* sql`CREATE TABLE IF NOT EXISTS virl_blobs (digest VARCHAR(64) PRIMARY KEY, content TEXT NOT NULL)`
    // every durable job, a sweep's trial or an evaluation suite (`sweep` names its batch: a sweep, or "eval NAME")
    yield* sql`CREATE TABLE IF NOT EXISTS virl_jobs (
      execution_id VARCHAR(128) PRIMARY KEY,
      sweep TEXT NOT NULL,
      label TEXT NOT NULL,
      state VARCHAR(16) NOT NULL,
      runner TEXT,
      attempts INTEGER NOT NULL DEFAULT 0,
      submitted_at BIGINT NOT NULL,
      started_at BIGINT,
      finished_at BIGINT,
      message TEXT
    )`
  }).pipe(
    (setup) => Effect.flatMap(SqlClient.SqlClient, (sql) => sql.withTransaction(setup)),
    // SQLite: a writer of another process may hold the file for a moment
    Effect.retry({ times: 8, while: (e) => e._tag === "SqlError", schedule: Schedule.jittered(Schedule.spaced("250 millis")) }),
    Effect.catchTag("SqlError", (e) => Effect.fail(sqlError(db, "cannot set up virl's tables")(e))),
    Effect.zipRight(ensureClusterTables(db))
  )

/**
 * @effect/cluster's own tables, made by one process at a time. Its storage layers make them with
 * PostgreSQL's CREATE TABLE IF NOT EXISTS when a runner or client starts, and of two processes
 * doing so at the same moment one can fail: two runners started together on a fresh database
 * left one never healthy in 3 of 25 tries. Made here first, under an advisory lock, the layers
 * find them there.
 */
const ensureClusterTables = (db: DatabaseUrl) =>
  db.kind !== "postgres"
    ? Effect.void
    : Effect.scoped(
      Effect.gen(function*() {
        const conn = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql.reserve)
        yield* Effect.acquireRelease(conn.executeRaw("SELECT pg_advisory_lock(7021927)", []), () =>
          Effect.ignore(conn.executeRaw("SELECT pg_advisory_unlock(7021927)", [])))
        yield* Layer.build(Layer.merge(SqlMessageStorage.layer, SqlRunnerStorage.layer).pipe(Layer.provide(ShardingConfig.layer())))
      })
    ).pipe(Effect.catchTag("SqlError", (e) =>
      Effect.fail(sqlError(db, "cannot set up the cluster's tables")(e))))

const rowOf = (r: Record<string, unknown>): TrialRow => {
  const n = (v: unknown) => (v === null || v === undefined ? null : Number(v))
  return {
    executionId: String(r["execution_id"]),
    sweep: String(r["sweep"]),
    label: String(r["label"]),
    state: String(r["state"]) as TrialState,
    runner: r["runner"] === null ? null : String(r["runner"]),
    attempts: Number(r["attempts"]),
    submittedAt: Number(r["submitted_at"]),
    startedAt: n(r["started_at"]),
    finishedAt: n(r["finished_at"]),
    message: r["message"] === null ? null : String(r["message"])
  }
}

export const trialRows = (db: DatabaseUrl, sweep?: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = sweep === undefined
      ? yield* sql<Record<string, unknown>>`SELECT * FROM virl_jobs ORDER BY sweep, submitted_at, label`
      : yield* sql<Record<string, unknown>>`SELECT * FROM virl_jobs WHERE sweep = ${sweep} ORDER BY submitted_at, label`
    return rows.map(rowOf)
  }).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(sqlError(db, "cannot read the trials")(e))))

/**
 * How long a write to virl_jobs keeps trying while the database is away (a restart, a failover):
 * half a second, doubling to ten, for five minutes; then a warning, and the job goes on.
 */
export const DATABASE_PATIENCE = Schedule.exponential("500 millis").pipe(Schedule.union(Schedule.spaced("10 seconds")), Schedule.upTo("5 minutes"))

export const mark = (db: DatabaseUrl, executionId: string, update: (sql: SqlClient.SqlClient) => Effect.Effect<unknown, unknown>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => update(sql)).pipe(
    Effect.retry(DATABASE_PATIENCE),
    Effect.catchAll((e) => Effect.logWarning(`cannot record the state of trial ${executionId} in ${db.shown}: ${scrub(db, String(e))}`))
  )

/** A job's state in virl_jobs, or undefined when it was never submitted. */
export const jobState = (db: DatabaseUrl, executionId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ state: string }>`SELECT state FROM virl_jobs WHERE execution_id = ${executionId}`).pipe(
    Effect.map((rows) => rows[0]?.state as TrialState | undefined),
    Effect.catchTag("SqlError", (e) => Effect.fail(sqlError(db, "cannot read the jobs")(e)))
  )

/** The submitter's record of a job: pending until a runner takes it (kept as it is when it exists). */
export const recordSubmitted = (db: DatabaseUrl, executionId: string, p: { readonly sweep: string; readonly label: string }) =>
  mark(
    db,
    executionId,
    (sql) =>
      sql`INSERT INTO virl_jobs (execution_id, sweep, label, state, attempts, submitted_at) VALUES (${executionId}, ${p.sweep}, ${p.label}, 'pending', 0, ${Date.now()}) ON CONFLICT (execution_id) DO NOTHING`
  )
