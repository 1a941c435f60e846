import { Workflow } from "@effect/workflow"
import { Schema } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"

/**
 * The cluster's two kinds of durable job, as @effect/workflow workflows: a sweep's trial and an
 * evaluation suite. Their payloads are what travels; their folders are where a runner puts them.
 */

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
export const PROJECT_ROOT = path.resolve(import.meta.dirname, "../..")

export const fileDigest = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex")

/** The folder of one trial on a runner. */
export const runnerTrialDir = (out: string, p: TrialPayload, folder: (label: string) => string) => path.join(out, folder(p.sweep), "trials", folder(p.label))

/** How an evaluation shows in virl_jobs and --status: its "sweep" and its label. */
export const evalJob = (p: Pick<EvalPayload, "name" | "suite">) => ({ sweep: `eval ${p.name}`, label: p.suite })

/** The folder of one evaluation on a runner: OUT/evals/<job id>/. */
export const runnerEvalDir = (out: string, executionId: string) => path.join(out, "evals", executionId.replace(/[^A-Za-z0-9_-]/g, "_"))
