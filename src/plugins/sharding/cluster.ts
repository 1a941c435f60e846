import { ClusterWorkflowEngine, RunnerAddress, ShardingConfig, SqlMessageStorage, SqlRunnerStorage } from "@effect/cluster"
import { SqlClient } from "@effect/sql"
import { Activity, Workflow } from "@effect/workflow"
import { Deferred, Duration, Effect, FiberId, Layer, Option, Schedule, Schema } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { DatabaseError, type DatabaseUrl, scrub, sqlLayer } from "./database.ts"
import * as Transport from "./transport.ts"

/**
 * Sweep trials and evaluation suites as durable jobs: each is a workflow execution of
 * @effect/workflow on an @effect/cluster of runners (`virl runner`), its messages and journal in
 * SQL. A runner that dies mid-job loses its shards when its locks expire; another runner takes
 * them over and runs the job again (a trial resumes from its checkpoints where the folder is
 * shared). A runner that was only away (stopped, cut off) and comes back finds its claim
 * superseded in virl_jobs — every write there names the attempt — and stands down without a
 * result; its trial processes had already stopped themselves (they hear from it every second).
 * While the database is away, runners interrupt their jobs with their shards and take them up
 * again when it is back; a submitter waits for it. A finished job's result is journaled, so
 * submitting it again returns it without a run.
 * An evaluation's checkpoint travels through the database (content-addressed), so runners need
 * no shared folder.
 */

/** The version of the tables virl keeps beside the cluster's; a runner refuses any other. */
export const SCHEMA = "virl-cluster/3 (@effect/cluster 0.60.2, @effect/workflow 0.19.1)"
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
  overrides: Schema.String,
  /** 0, and one more each time the same trial is submitted again after it failed. */
  round: Schema.Number
})
export type TrialPayload = typeof TrialPayload.Type

export const TrialWorkflow = Workflow.make({
  name: "virl/trial",
  payload: TrialPayload,
  success: Schema.String,
  error: TrialFailed,
  idempotencyKey: (p) => JSON.stringify([p.sweep, p.label, p.file, p.digest, p.quick, p.overrides, p.round])
})

/** What a runner needs to evaluate a policy on a suite. */
export const EvalPayload = Schema.Struct({
  /** oracle, random, or `checkpoint:<sha256>` of a bundle in virl_blobs. */
  policy: Schema.String,
  /** What the submitter called the policy (its folder), for --status. */
  name: Schema.String,
  suite: Schema.String,
  /** The resolved run config as JSON. */
  config: Schema.String,
  /** A dataset folder every runner has, or null: the default cities. */
  data: Schema.NullOr(Schema.String),
  /** 0, and one more each time the same evaluation is submitted again after it failed. */
  round: Schema.Number
})
export type EvalPayload = typeof EvalPayload.Type

export const EvalWorkflow = Workflow.make({
  name: "virl/eval",
  payload: EvalPayload,
  success: Schema.String,
  error: TrialFailed,
  idempotencyKey: (p) => JSON.stringify([p.policy, p.suite, p.config, p.data, p.round])
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
const DATABASE_PATIENCE = Schedule.exponential("500 millis").pipe(Schedule.union(Schedule.spaced("10 seconds")), Schedule.upTo("5 minutes"))

const mark = (db: DatabaseUrl, executionId: string, update: (sql: SqlClient.SqlClient) => Effect.Effect<unknown, unknown>) =>
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
  /**
   * Runs one trial here; its results.json text, or a failure. `ours` says whether this runner
   * still holds the job (true when the database cannot say), asked before starting it again.
   */
  readonly runTrial: (payload: TrialPayload, dir: string, ours: Effect.Effect<boolean>) => Effect.Effect<string, TrialFailed>
  /** Evaluates one suite here (the folder is the job's); the result's text, also written to `dir/result.json`. */
  readonly runEval: (payload: EvalPayload, dir: string) => Effect.Effect<string, TrialFailed, SqlClient.SqlClient>
  /** The cluster's shared secret (see transport.ts); empty: none. */
  readonly secret: Buffer
  readonly log?: (line: string) => void
}

const shardingConfig = (failover: number) => ({
  shardLockExpiration: Duration.seconds(failover),
  // shard locks as rows that lapse after the failover time, not PostgreSQL's advisory locks: those
  // live as long as the runner's session, and a runner that is stopped (SIGSTOP, a frozen VM)
  // keeps its session open — its shards stayed locked until it continued, however long
  shardLockDisableAdvisory: true,
  shardLockRefreshInterval: Duration.seconds(Math.max(1, failover / 4)),
  refreshAssignmentsInterval: Duration.seconds(Math.max(1, Math.min(3, failover / 4))),
  entityMessagePollInterval: Duration.seconds(2),
  runnerHealthCheckInterval: Duration.seconds(Math.max(2, failover / 2)),
  // a trial is one long request: its entity is busy, not idle
  entityMaxIdleTime: Duration.minutes(10)
})

/** One durable job as a runner runs it: its execution, its name in logs, its folder, the file that says it finished, the run. */
interface JobSpec<R> {
  readonly executionId: string
  readonly name: string
  readonly dir: string
  readonly finished: string
  /** `ours`: whether this runner still holds the job (asked before starting it again). */
  readonly run: (ours: Effect.Effect<boolean>) => Effect.Effect<string, TrialFailed, R>
}

/** What a job's run gives instead of a result when another runner has taken the job over. */
const STOOD_DOWN = Symbol("stood down")

/** The folder of one trial on a runner. */
export const runnerTrialDir = (out: string, p: TrialPayload, folder: (label: string) => string) => path.join(out, folder(p.sweep), "trials", folder(p.label))

/** How an evaluation shows in virl_jobs and --status: its "sweep" and its label. */
export const evalJob = (p: Pick<EvalPayload, "name" | "suite">) => ({ sweep: `eval ${p.name}`, label: p.suite })

/** The folder of one evaluation on a runner: OUT/evals/<job id>/. */
export const runnerEvalDir = (out: string, executionId: string) => path.join(out, "evals", executionId.replace(/[^A-Za-z0-9_-]/g, "_"))

/**
 * A runner: joins the cluster in `db`, takes the shards it is assigned, and runs the trials whose
 * workflows live there, `parallel` at a time. Runs until interrupted.
 */
export const runnerLayer = (options: RunnerOptions, folder: (label: string) => string) => {
  const address = `${options.host}:${options.port}`
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const workflows = Layer.unwrapEffect(
    Effect.gen(function*() {
      const permits = yield* Effect.makeSemaphore(options.parallel)
      /** The jobs under way in this process, by execution: a job delivered again while it runs here joins the run. */
      const underWay = new Map<string, Deferred.Deferred<string | typeof STOOD_DOWN, TrialFailed>>()
      /**
       * This runner's claim on a job: `attempts` one more, and this runner's address. Every later
       * write names the attempt, so a runner that was away (stopped, cut off) while another took
       * the job over writes nothing over the other's record.
       */
      const claim = (executionId: string) =>
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) =>
            sql<
              { attempts: number | bigint }
            >`UPDATE virl_jobs SET state = 'running', runner = ${address}, attempts = attempts + 1, started_at = ${Date.now()}, message = NULL WHERE execution_id = ${executionId} RETURNING attempts`
        ).pipe(
          Effect.retry(DATABASE_PATIENCE),
          Effect.map((rows) => (rows[0] === undefined ? undefined : Number(rows[0].attempts))),
          Effect.catchAll((e) =>
            Effect.as(
              Effect.logWarning(`cannot record that this runner runs ${executionId} in ${options.db.shown}: ${scrub(options.db, String(e))}`),
              undefined
            )
          )
        )
      /** A fenced write: true when it landed (the attempt is still the job's), false when another runner has taken the job over. */
      const settle = (executionId: string, attempt: number | undefined, state: "done" | "failed", message: string | null) =>
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) =>
            attempt === undefined
              ? sql<
                { attempts: number }
              >`UPDATE virl_jobs SET state = ${state}, finished_at = ${Date.now()}, message = ${message} WHERE execution_id = ${executionId} RETURNING attempts`
              : sql<
                { attempts: number }
              >`UPDATE virl_jobs SET state = ${state}, finished_at = ${Date.now()}, message = ${message} WHERE execution_id = ${executionId} AND attempts = ${attempt} AND runner = ${address} RETURNING attempts`
        ).pipe(
          Effect.retry(DATABASE_PATIENCE),
          Effect.map((rows) => rows.length > 0 || attempt === undefined),
          Effect.catchAll((e) =>
            Effect.as(Effect.logWarning(`cannot record the state of trial ${executionId} in ${options.db.shown}: ${scrub(options.db, String(e))}`), true)
          )
        )
      /** Who holds the job now, when it is no longer this attempt (checked every few seconds while it runs; an unreachable database says nothing). */
      const holder = (executionId: string, attempt: number) =>
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => sql<{ attempts: number; runner: string | null }>`SELECT attempts, runner FROM virl_jobs WHERE execution_id = ${executionId}`
        ).pipe(
          Effect.map((rows) => rows[0]),
          Effect.option,
          Effect.flatMap((row) =>
            Option.isSome(row) && row.value !== undefined && (Number(row.value.attempts) !== attempt || row.value.runner !== address)
              ? Effect.succeed(`${row.value.runner ?? "another runner"} (attempt ${Number(row.value.attempts)})`)
              : Effect.fail("still ours")
          )
        )
      const takenOver = (executionId: string, attempt: number) =>
        holder(executionId, attempt).pipe(
          Effect.retry({ schedule: Schedule.spaced(Duration.seconds(Math.max(1, options.failover / 2))) }),
          Effect.catchAll(() => Effect.never)
        )
      /**
       * A superseded attempt gives no result: its run has stopped, its permit goes back, and it
       * leaves the jobs under way, so a later delivery of the job (the shard handed back to this
       * runner) runs it afresh instead of joining it. Its delivery then waits to be interrupted:
       * the cluster interrupts it when this runner gives the shard up, and an interrupted job
       * leaves no reply, so the job's result is the other runner's.
       */
      const standDown = (name: string, holder: string) =>
        Effect.as(
          Effect.sync(() => log(`${name}: taken over by ${holder} while this runner was away; stopped here, the result is theirs`)),
          STOOD_DOWN
        )
      /**
       * One durable job: its state in virl_jobs, `parallel` at a time, not run again when
       * `finished` exists. A job is interrupted when this runner gives its shard up (the
       * database away, another runner holding the lock): its process stops, and it goes on from
       * its checkpoints when the shard's messages are delivered again. A delivery that comes
       * while an earlier run of the same job is still under way (or still stopping) joins it
       * instead of starting a second process on the same folder.
       */
      const job = <R>(spec: JobSpec<R>): Effect.Effect<string, TrialFailed, R | SqlClient.SqlClient> =>
        Effect.suspend(() => {
          const { executionId, name } = spec
          const running = underWay.get(executionId)
          if (running !== undefined) {
            log(`${name}: delivered again while it runs here; joined the run under way`)
            // the run joined stood down (another runner took the job over): this delivery runs it afresh
            return Effect.flatMap(Deferred.await(running), (result) => result === STOOD_DOWN ? job(spec) : Effect.succeed(result))
          }
          const deferred = Deferred.unsafeMake<string | typeof STOOD_DOWN, TrialFailed>(FiberId.none)
          underWay.set(executionId, deferred)
          return fresh(spec).pipe(
            Effect.onExit((exit) => Effect.zipRight(Effect.sync(() => underWay.delete(executionId)), Deferred.done(deferred, exit))),
            Effect.flatMap((result) => result === STOOD_DOWN ? Effect.interruptible(Effect.never) : Effect.succeed(result))
          )
        })
      const fresh = <R>({ executionId, name, dir, finished, run }: JobSpec<R>) =>
        Effect.gen(function*() {
          // a job that finished here before this runner (or another on this machine) died: not run twice
          if (fs.existsSync(finished)) {
            log(`${name}: finished before, result taken from ${finished}`)
            yield* mark(
              options.db,
              executionId,
              (sql) =>
                sql`UPDATE virl_jobs SET state = 'done', runner = ${address}, finished_at = ${Date.now()}, message = NULL WHERE execution_id = ${executionId}`
            )
            return fs.readFileSync(finished, "utf8")
          }
          // waiting for a permit can be interrupted: a job queued here when this runner gives its
          // shard up (it was stopped, and another runner took the job) must not start after all
          yield* Effect.interruptible(permits.take(1))
          return yield* Effect.ensuring(
            Effect.gen(function*() {
              // an interruption that came while the permit was being handed over: honoured before the claim
              yield* Effect.interruptible(Effect.void)
              const attempt = yield* claim(executionId)
              const sql = yield* SqlClient.SqlClient
              log(`${name}: running in ${dir}${attempt === undefined ? "" : ` (attempt ${attempt})`}`)
              // the run, stopped when another runner takes the job over (its child process ends with it)
              const outcome = yield* Effect.raceFirst(
                Effect.interruptible(
                  run(
                    attempt === undefined
                      ? Effect.succeed(true)
                      : Effect.map(Effect.option(holder(executionId, attempt)), Option.isNone).pipe(Effect.provideService(SqlClient.SqlClient, sql))
                  ).pipe(
                    // a crash is the job's failure too: recorded, journaled, run again when resubmitted
                    Effect.catchAllDefect((d) => Effect.fail(new TrialFailed({ message: `${name} crashed: ${String(d)}` }))),
                    Effect.map((result) => ({ _tag: "ran" as const, result })),
                    Effect.either
                  )
                ),
                attempt === undefined
                  ? Effect.never
                  : Effect.interruptible(Effect.map(takenOver(executionId, attempt), (holder) => ({ _tag: "taken" as const, holder })))
              )
              if (outcome._tag === "taken") return yield* standDown(name, outcome.holder)
              if (outcome._tag === "Left") {
                if (!(yield* settle(executionId, attempt, "failed", outcome.left.message))) return yield* standDown(name, "another runner")
                return yield* Effect.fail(outcome.left)
              }
              if (!(yield* settle(executionId, attempt, "done", null))) return yield* standDown(name, "another runner")
              log(`${name}: done`)
              return outcome.right.result
            }),
            permits.release(1)
          )
        })
      const trials = TrialWorkflow.toLayer((payload, executionId) => {
        const dir = runnerTrialDir(options.out, payload, folder)
        return Activity.make({
          name: "run-trial",
          success: Schema.String,
          error: TrialFailed,
          execute: job({
            executionId,
            name: `${payload.sweep} ${payload.label}`,
            dir,
            finished: path.join(dir, "results.json"),
            run: (ours) => options.runTrial(payload, dir, ours)
          })
        })
      })
      const evals = EvalWorkflow.toLayer((payload, executionId) => {
        const dir = runnerEvalDir(options.out, executionId)
        const { sweep, label } = evalJob(payload)
        return Activity.make({
          name: "run-eval",
          success: Schema.String,
          error: TrialFailed,
          execute: job({ executionId, name: `${sweep} ${label}`, dir, finished: path.join(dir, "result.json"), run: () => options.runEval(payload, dir) })
        })
      })
      return Layer.merge(trials, evals)
    })
  )
  return workflows.pipe(
    Layer.provideMerge(ClusterWorkflowEngine.layer),
    Layer.provideMerge(
      Transport.layer({
        clientOnly: false,
        secret: options.secret,
        log,
        shardingConfig: {
          ...shardingConfig(options.failover),
          runnerAddress: Option.some(RunnerAddress.RunnerAddress.make({ host: options.host, port: options.port }))
        }
      })
    ),
    Layer.provideMerge(sqlLayer(options.db))
  )
}

/** What submits trials and reads their results: a client of the cluster that runs nothing itself. */
export const clientLayer = (db: DatabaseUrl, secret: Buffer) =>
  ClusterWorkflowEngine.layer.pipe(
    Layer.provideMerge(
      Transport.layer({ clientOnly: true, secret, log: (line) => process.stderr.write(`${line}\n`), shardingConfig: shardingConfig(30) })
    ),
    Layer.provideMerge(sqlLayer(db))
  )
