import type { Workflow } from "@effect/workflow"
import { Cause, Effect, Exit, Option, Schedule, Schema } from "effect"
import { jobState, recordSubmitted } from "./job-table.ts"
import type { EvalWorkflow, TrialFailed, TrialWorkflow } from "./workflows.ts"
import type { DatabaseUrl } from "./database.ts"

/**
 * Submitting durable jobs (sweep trials, evaluation suites) and waiting for them: what a
 * submitter does with the cluster, whatever the jobs are.
 */

/** A job's end: its result text, or why it failed. */
export type Outcome = { ok: true; results: string } | { ok: false; message: string }

/**
 * Submits a job, or attaches to it when it is pending, running or done: a finished job is never
 * run twice. A job that failed is run again, as the next round (its own execution), so fixing
 * what made it fail (a runner's missing dataset, a crash) and submitting again is enough.
 */
export const submitJob = <P extends { readonly round: number }, R, R2>(
  workflow: {
    readonly executionId: (p: P) => Effect.Effect<string>
    readonly execute: (p: P, o: { readonly discard: true }) => Effect.Effect<string, never, R>
    readonly poll: (id: string) => Effect.Effect<Workflow.Result<unknown, unknown> | undefined, never, R2>
  },
  url: DatabaseUrl,
  base: Omit<P, "round">,
  job: { readonly sweep: string; readonly label: string }
) =>
  Effect.gen(function*() {
    for (let round = 0;; round++) {
      const payload = { ...base, round } as unknown as P
      const id = yield* workflow.executionId(payload)
      // failed: as its runner recorded it, or as the journal has it (a crash the runner could not record)
      if ((yield* jobState(url, id)) === "failed") continue
      const journaled = yield* workflow.poll(id)
      if (journaled !== undefined && journaled._tag === "Complete" && Exit.isFailure(journaled.exit)) continue
      if (round > 0) console.error(`${job.sweep} ${job.label}: failed before; submitted again (round ${round})`)
      yield* recordSubmitted(url, id, job)
      yield* workflow.execute(payload, { discard: true })
      return id
    }
  })

/** A request the cluster cannot take, said before anything is submitted. */
export class SubmitError extends Schema.TaggedError<SubmitError>()("SubmitError", { message: Schema.String }) {
  override toString(): string {
    return this.message
  }
}

/**
 * How long a submitter keeps waiting for a database it cannot reach (a restart, a failover)
 * before it gives up; the jobs go on without it, and submitting again attaches to them.
 */
export const DATABASE_ABSENCE_LIMIT = "10 minutes"

/**
 * A poll of the journal that outlasts a database away for a while: tried again, 1 s doubling to
 * 15 s, for DATABASE_ABSENCE_LIMIT, one line said when it goes away and one when it is back.
 * (The cluster's poll turns a failed query into a defect; that is what is caught here.)
 */
const patientPoll = <A, R>(poll: Effect.Effect<A, never, R>, absent: { since: number | undefined }) =>
  poll.pipe(
    Effect.sandbox,
    Effect.tapError((cause) =>
      Effect.sync(() => {
        if (absent.since !== undefined) return
        absent.since = Date.now()
        console.error(
          `the cluster's database cannot be reached (${String(Cause.squash(cause)).split("\n")[0]}); waiting for it, up to ${DATABASE_ABSENCE_LIMIT}`
        )
      })
    ),
    Effect.retry(Schedule.exponential("1 second").pipe(Schedule.union(Schedule.spaced("15 seconds")), Schedule.upTo(DATABASE_ABSENCE_LIMIT))),
    Effect.tap(() =>
      Effect.sync(() => {
        if (absent.since === undefined) return
        console.error(`the cluster's database is back after ${Math.round((Date.now() - absent.since) / 1000)} s`)
        absent.since = undefined
      })
    ),
    Effect.catchAll((cause) =>
      Effect.fail(
        new SubmitError({
          message: `the cluster's database was away for ${DATABASE_ABSENCE_LIMIT}: ${
            String(Cause.squash(cause)).split("\n")[0]
          }. The jobs go on on the runners; submitting again waits for them`
        })
      )
    )
  )

/** Waits until every execution has completed; its result text or its failure, by id. */
export const awaitAll = <W extends typeof TrialWorkflow | typeof EvalWorkflow>(
  workflow: W,
  ids: ReadonlyArray<string>,
  bar: (done: number, total: number) => void = () => {}
) =>
  Effect.gen(function*() {
    const outcomes = new Map<string, Outcome>()
    const absent = { since: undefined as number | undefined }
    while (outcomes.size < ids.length) {
      for (const id of ids) {
        if (outcomes.has(id)) continue
        const result = yield* patientPoll(workflow.poll(id), absent)
        if (result === undefined || result._tag !== "Complete") continue
        const exit = result.exit
        outcomes.set(
          id,
          Exit.isSuccess(exit)
            ? { ok: true, results: exit.value as string }
            : {
              ok: false,
              message: Option.match(Cause.failureOption(exit.cause), { onNone: () => Cause.pretty(exit.cause), onSome: (e) => (e as TrialFailed).message })
            }
        )
        bar(outcomes.size, ids.length)
      }
      if (outcomes.size < ids.length) yield* Effect.sleep("2 seconds")
    }
    return outcomes
  })
