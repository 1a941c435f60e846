import { ClusterWorkflowEngine, RunnerAddress } from "@effect/cluster"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import { SqlClient } from "@effect/sql"
import { Activity, Workflow } from "@effect/workflow"
import { Duration, Effect, Layer, Option, Schedule, Schema } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { DatabaseError, scrub, sqlLayer, type DatabaseUrl } from "./database.ts"

/**
 * Sweep trials as durable jobs: each trial is a workflow execution of @effect/workflow on an
 * @effect/cluster of runners (`virl runner`), its messages and journal in SQL. A runner that dies
 * mid-trial loses its shards when its locks expire; another runner takes them over and runs the
 * trial again (it resumes from the trial's checkpoints where the folder is shared). A finished
 * trial's result is journaled, so submitting the same sweep again returns it without a run.
 */

/** The version of the tables virl keeps beside the cluster's; a runner refuses any other. */
export const SCHEMA = "virl-cluster/1 (@effect/cluster 0.60.2, @effect/workflow 0.19.1)"
const VIRL_VERSION = (JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, "../../../package.json"), "utf8")) as { version: string }).version

export class TrialFailed extends Schema.TaggedError<TrialFailed>()("TrialFailed", { message: Schema.String }) {
  override toString(): string {
    return this.message
  }
}

/** What a runner needs to run a trial: the experiment file (as a path in the project, and its digest), the trial, the flags. */
export const TrialPayload = Schema.Struct({
  sweep: Schema.String,
  label: Schema.String,
  /** The experiment file, relative to the project's root (every machine has the project). */
  file: Schema.String,
  /** sha256 of the file: a runner with another copy refuses the trial. */
  digest: Schema.String,
  quick: Schema.Boolean,
  /** Dotted overrides as JSON. */
  overrides: Schema.String
})
export type TrialPayload = typeof TrialPayload.Type

export const TrialWorkflow = Workflow.make({
  name: "virl/trial",
  payload: TrialPayload,
  success: Schema.String,
  error: TrialFailed,
  idempotencyKey: (p) => JSON.stringify([p.sweep, p.label, p.file, p.digest, p.quick, p.overrides])
})

/** The project's root: where `virl` lives. */
export const PROJECT_ROOT = path.resolve(import.meta.dirname, "../../..")

export const fileDigest = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex")

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

const sqlError = (db: DatabaseUrl, what: string) => (e: unknown) => new DatabaseError({ message: `${db.shown}: ${what}: ${scrub(db, String(e))}` })

/**
 * virl's own tables beside the cluster's: its schema's version, and one row per trial for
 * `virl sweep --status`. Refuses a database set up by another version.
 */
export const ensureSchema = (db: DatabaseUrl) =>
  Effect.gen(function* () {
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
        message: `${db.shown} was set up by virl ${found["virl"] ?? "?"} with the schema ${JSON.stringify(found["schema"])}; this is virl ${VIRL_VERSION} (schema ${JSON.stringify(SCHEMA)}): use another database, or the virl that made it`
      })
    }
    yield* sql`CREATE TABLE IF NOT EXISTS virl_trials (
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
    Effect.catchTag("SqlError", (e) => Effect.fail(sqlError(db, "cannot set up virl's tables")(e)))
  )

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
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows =
      sweep === undefined
        ? yield* sql<Record<string, unknown>>`SELECT * FROM virl_trials ORDER BY sweep, submitted_at, label`
        : yield* sql<Record<string, unknown>>`SELECT * FROM virl_trials WHERE sweep = ${sweep} ORDER BY submitted_at, label`
    return rows.map(rowOf)
  }).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(sqlError(db, "cannot read the trials")(e))))

const mark = (db: DatabaseUrl, executionId: string, update: (sql: SqlClient.SqlClient) => Effect.Effect<unknown, unknown>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => update(sql)).pipe(
    Effect.retry({ times: 5, schedule: undefined }),
    Effect.catchAll((e) => Effect.logWarning(`cannot record the state of trial ${executionId} in ${db.shown}: ${scrub(db, String(e))}`))
  )

/** The submitter's record of a trial: pending until a runner takes it (kept as it is when it exists). */
export const recordSubmitted = (db: DatabaseUrl, executionId: string, p: TrialPayload) =>
  mark(db, executionId, (sql) => sql`INSERT INTO virl_trials (execution_id, sweep, label, state, attempts, submitted_at) VALUES (${executionId}, ${p.sweep}, ${p.label}, 'pending', 0, ${Date.now()}) ON CONFLICT (execution_id) DO NOTHING`)

export interface RunnerOptions {
  readonly db: DatabaseUrl
  readonly host: string
  readonly port: number
  /** Trials run at once on this runner. */
  readonly parallel: number
  /** Seconds after which a silent runner's trials move to another runner. */
  readonly failover: number
  /** Where this runner's trial folders go: OUT/<sweep>/trials/<label>. */
  readonly out: string
  /** Runs one trial here; its results.json text, or a failure. */
  readonly runTrial: (payload: TrialPayload, dir: string) => Effect.Effect<string, TrialFailed>
  readonly log?: (line: string) => void
}

const shardingConfig = (failover: number) => ({
  shardLockExpiration: Duration.seconds(failover),
  shardLockRefreshInterval: Duration.seconds(Math.max(1, failover / 4)),
  refreshAssignmentsInterval: Duration.seconds(Math.max(1, Math.min(3, failover / 4))),
  entityMessagePollInterval: Duration.seconds(2),
  runnerHealthCheckInterval: Duration.seconds(Math.max(2, failover / 2)),
  // a trial is one long request: its entity is busy, not idle
  entityMaxIdleTime: Duration.minutes(10)
})

/** The folder of one trial on a runner. */
export const runnerTrialDir = (out: string, p: TrialPayload, folder: (label: string) => string) => path.join(out, folder(p.sweep), "trials", folder(p.label))

/**
 * A runner: joins the cluster in `db`, takes the shards it is assigned, and runs the trials whose
 * workflows live there, `parallel` at a time. Runs until interrupted.
 */
export const runnerLayer = (options: RunnerOptions, folder: (label: string) => string) => {
  const address = `${options.host}:${options.port}`
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const workflows = Layer.unwrapEffect(
    Effect.gen(function* () {
      const permits = yield* Effect.makeSemaphore(options.parallel)
      return TrialWorkflow.toLayer((payload, executionId) =>
        Activity.make({
          name: "run-trial",
          success: Schema.String,
          error: TrialFailed,
          execute: Effect.gen(function* () {
            const dir = runnerTrialDir(options.out, payload, folder)
            const finished = path.join(dir, "results.json")
            // a trial that finished here before this runner (or another on this machine) died: not run twice
            if (fs.existsSync(finished)) {
              log(`${payload.sweep} ${payload.label}: finished before, result taken from ${finished}`)
              yield* mark(options.db, executionId, (sql) => sql`UPDATE virl_trials SET state = 'done', runner = ${address}, finished_at = ${Date.now()}, message = NULL WHERE execution_id = ${executionId}`)
              return fs.readFileSync(finished, "utf8")
            }
            return yield* permits.withPermits(1)(
              Effect.gen(function* () {
                yield* mark(options.db, executionId, (sql) =>
                  sql`UPDATE virl_trials SET state = 'running', runner = ${address}, attempts = attempts + 1, started_at = ${Date.now()}, message = NULL WHERE execution_id = ${executionId}`
                )
                log(`${payload.sweep} ${payload.label}: running in ${dir}`)
                const result = yield* options.runTrial(payload, dir).pipe(
                  Effect.tapError((e) =>
                    mark(options.db, executionId, (sql) => sql`UPDATE virl_trials SET state = 'failed', finished_at = ${Date.now()}, message = ${e.message} WHERE execution_id = ${executionId}`)
                  )
                )
                yield* mark(options.db, executionId, (sql) => sql`UPDATE virl_trials SET state = 'done', finished_at = ${Date.now()}, message = NULL WHERE execution_id = ${executionId}`)
                log(`${payload.sweep} ${payload.label}: done`)
                return result
              })
            )
          })
        })
      )
    })
  )
  return workflows.pipe(
    Layer.provideMerge(ClusterWorkflowEngine.layer),
    Layer.provideMerge(
      NodeClusterSocket.layer({
        storage: "sql",
        shardingConfig: { ...shardingConfig(options.failover), runnerAddress: Option.some(RunnerAddress.RunnerAddress.make({ host: options.host, port: options.port })) }
      })
    ),
    Layer.provideMerge(sqlLayer(options.db))
  )
}

/** What submits trials and reads their results: a client of the cluster that runs nothing itself. */
export const clientLayer = (db: DatabaseUrl) =>
  ClusterWorkflowEngine.layer.pipe(
    Layer.provideMerge(NodeClusterSocket.layer({ clientOnly: true, storage: "sql", shardingConfig: shardingConfig(30) })),
    Layer.provideMerge(sqlLayer(db))
  )
