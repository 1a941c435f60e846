import { ClusterWorkflowEngine, RunnerAddress } from "@effect/cluster"
import { SqlClient } from "@effect/sql"
import { Activity } from "@effect/workflow"
import { Deferred, Duration, Effect, FiberId, Layer, Option, Schedule, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { type DatabaseUrl, scrub, sqlLayer } from "./database.ts"
import { DATABASE_PATIENCE, mark } from "./job-table.ts"
import * as Transport from "./transport.ts"
import { evalJob, type EvalPayload, EvalWorkflow, runnerEvalDir, runnerTrialDir, TrialFailed, type TrialPayload, TrialWorkflow } from "./workflows.ts"

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
