import { Command, Options } from "@effect/cli"
import { Cause, Effect, Layer, Logger, LogLevel, Option, ParseResult, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { isSweep, type Sweep } from "../core/experiment.ts"
import { writeFileAtomic } from "../core/files.ts"
import { loadExperimentFile } from "../app/experiment-file.ts"
import { RunConfig } from "../app/config.ts"
import { evaluateSuite, loadPolicy, type SuiteName, SUITES } from "../app/evaluate.ts"
import { withDefaults } from "../app/components.ts"
import { defaultDatasets } from "../app/services.ts"
import { suiteSpec } from "../app/suites.ts"
import type { SuiteMetrics } from "../core/evaluation.ts"
import { PARENT_SILENT_EXIT } from "../app/processes.ts"
import { logTail, prepareTrials, runTrialProcess, trialByLabel, trialFolder } from "../app/trials.ts"
import { bundleFiles, materializeBundle, uploadBundle } from "../cluster/bundles.ts"
import { ensureSchema, type TrialRow, trialRows } from "../cluster/job-table.ts"
import { clientLayer, runnerLayer } from "../cluster/runner.ts"
import { evalJob, type EvalPayload, EvalWorkflow, fileDigest, PROJECT_ROOT, TrialFailed, type TrialPayload, TrialWorkflow } from "../cluster/workflows.ts"
import { DatabaseError, type DatabaseUrl, parseDatabaseUrl, sqlLayer } from "../cluster/database.ts"
import { awaitAll, SubmitError, submitJob } from "../cluster/jobs.ts"
import { isLoopback, MIN_SECRET, readSecret } from "../cluster/transport.ts"
import { printError, reportError } from "./errors.ts"
import { progressBar } from "./progress.ts"
import { cliProgress } from "./progress.ts"
import { textSetting } from "../core/settings.ts"

/** The cluster's warnings and errors, one line each on stderr (no stack traces), nothing below a warning. */
const oneLine = Logger.make(({ logLevel, message, cause, date }) => {
  const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
  const why = Cause.isEmpty(cause) ? "" : `: ${String(Cause.squash(cause)).split("\n")[0]}`
  process.stderr.write(`[${date.toISOString().slice(11, 19)}] ${logLevel.label} ${text}${why}\n`)
})
const quiet = Layer.mergeAll(
  Logger.replace(Logger.defaultLogger, oneLine),
  Logger.replace(Logger.prettyLoggerDefault, oneLine),
  Logger.minimumLogLevel(LogLevel.Warning)
)

/**
 * A runner asked to stop (Ctrl-C, SIGTERM) hands its shards back; if the database cannot be
 * reached to do so, it still exits after this long (its locks then expire on their own).
 */
const STOP_GRACE_MS = 10_000
const exitAfterGrace = () => {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => setTimeout(() => process.exit(130), STOP_GRACE_MS).unref())
  }
}

/**
 * The project's file a trial names, or undefined where the name is absolute or leaves the project
 * (`..`, a symlink pointing out): a runner imports and runs that file, so it runs only the
 * project's own.
 */
export const projectFile = (name: string): string | undefined => {
  if (name === "" || path.isAbsolute(name) || name.includes("\0") || name.split(/[\\/]/).includes("..")) return undefined
  const file = path.resolve(PROJECT_ROOT, name)
  const inside = (p: string, root: string) => !path.relative(root, p).startsWith("..") && !path.isAbsolute(path.relative(root, p))
  if (!inside(file, PROJECT_ROOT)) return undefined
  try {
    return inside(fs.realpathSync(file), fs.realpathSync(PROJECT_ROOT)) ? file : undefined
  } catch {
    // not there (yet): the caller says so
    return file
  }
}

/** Runs one trial on this runner: the same file as the submitter's (checked by digest), its base built once per runner. */
const runHere = (prepareLock: Effect.Semaphore, failover: number) => (payload: TrialPayload, dir: string, ours: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    const file = projectFile(payload.file)
    if (file === undefined) {
      return yield* new TrialFailed({
        message: `a trial's file must be a relative path inside the project; this one is ${JSON.stringify(payload.file)}: refused`
      })
    }
    if (!fs.existsSync(file)) {
      return yield* new TrialFailed({ message: `this runner has no ${file} (the sweep's file, relative to the project: ${payload.file})` })
    }
    if (fileDigest(file) !== payload.digest) {
      return yield* new TrialFailed({
        message: `this runner's ${file} differs from the one submitted (sha256 ${payload.digest.slice(0, 12)}…): update the project here`
      })
    }
    const overrides = JSON.parse(payload.overrides) as Record<string, unknown>
    yield* prepareLock.withPermits(1)(
      Effect.gen(function*() {
        const sweep = yield* loadExperimentFile(file)
        if (!isSweep(sweep)) return yield* new TrialFailed({ message: `${file} declares an experiment, not a sweep` })
        const trial = trialByLabel(sweep, payload.label)
        if (trial === undefined) return yield* new TrialFailed({ message: `${file} has no trial ${payload.label}` })
        yield* prepareTrials(sweep, [trial], { quick: payload.quick, overrides, progress: cliProgress })
      })
    ).pipe(Effect.mapError((e) => (e instanceof TrialFailed ? e : new TrialFailed({ message: `cannot prepare ${payload.label}: ${String(e)}` }))))
    let code = yield* runTrialProcess({ file, label: payload.label, dir, quick: payload.quick, overrides, silence: failover })
    // stopped because this runner fell silent (stopped, frozen) and no other runner took the trial meanwhile: on from its checkpoints
    while (code === PARENT_SILENT_EXIT) {
      // another runner took it over meanwhile: not started again here (the job's watcher stands this run down)
      if (!(yield* ours)) return yield* Effect.never
      console.error(`${payload.sweep} ${payload.label}: its process stopped while this runner was silent; going on from its checkpoints`)
      code = yield* runTrialProcess({ file, label: payload.label, dir, quick: payload.quick, overrides, silence: failover })
    }
    const results = path.join(dir, "results.json")
    if (code !== 0 || !fs.existsSync(results)) {
      return yield* new TrialFailed({ message: `trial ${payload.label} exited with ${code}; the end of ${path.join(dir, "run.log")}:\n${logTail(dir)}` })
    }
    return fs.readFileSync(results, "utf8")
  })

/** What an evaluation job returns: the suite's metrics and its log in the reference's format. */
export interface EvalResult {
  readonly metrics: SuiteMetrics
  readonly log: string
}

/**
 * Evaluates one suite on this runner, in this process (it dies with the runner): the checkpoint
 * taken from the database into OUT/checkpoints/<sha256> once, the config as the submitter
 * resolved it, the default cities or a dataset folder this machine has.
 */
const evalHere = (db: DatabaseUrl, out: string) => (payload: EvalPayload, dir: string) =>
  Effect.gen(function*() {
    const decoded = Schema.decodeUnknownEither(RunConfig)(JSON.parse(payload.config))
    if (decoded._tag === "Left") {
      return yield* new TrialFailed({ message: `the submitted config does not fit this virl: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}` })
    }
    const cfg = decoded.right
    if (!(SUITES as ReadonlyArray<string>).includes(payload.suite)) {
      return yield* new TrialFailed({ message: `unknown suite ${payload.suite} (this virl has ${SUITES.join(", ")})` })
    }
    const policy = payload.policy.startsWith("checkpoint:")
      ? yield* materializeBundle(db, payload.policy.slice("checkpoint:".length), path.join(out, "checkpoints", payload.policy.slice("checkpoint:".length)))
      : payload.policy
    if (payload.data !== null && !fs.existsSync(payload.data)) return yield* new TrialFailed({ message: `this runner has no dataset folder ${payload.data}` })
    const datasets = payload.data === null ? yield* defaultDatasets() : { root: payload.data, train: payload.data, eval: payload.data, visualOod: payload.data }
    fs.mkdirSync(dir, { recursive: true })
    const logFile = path.join(dir, "log.jsonl")
    // the policy and its generators from the default layers, as `virl eval` takes them
    const metrics = yield* withDefaults(
      cfg,
      Effect.flatMap(loadPolicy(policy, cfg), (loaded) =>
        evaluateSuite(cfg, loaded, suiteSpec(payload.suite as SuiteName), datasets, { ...(payload.data === null ? {} : { data: payload.data }), logFile }))
    )
    const result = JSON.stringify({ metrics, log: fs.readFileSync(logFile, "utf8") } satisfies EvalResult)
    writeFileAtomic(path.join(dir, "result.json"), result)
    return result
  }).pipe(Effect.mapError((e) => (e instanceof TrialFailed ? e : new TrialFailed({ message: `${payload.suite} of ${payload.name}: ${String(e)}` }))))

export const runner = Command.make(
  "runner",
  {
    db: Options.text("db").pipe(
      Options.optional,
      Options.withDescription(
        "the cluster's database: postgres://user:password@host:port/db (many machines) or sqlite:PATH (one machine); default $VIRL_DB (keeps a password out of `ps`)"
      )
    ),
    host: Options.text("host").pipe(
      Options.withDefault("127.0.0.1"),
      Options.withDescription("this runner's address as the other runners reach it (listened on too)")
    ),
    port: Options.integer("port").pipe(Options.withDefault(34431), Options.withDescription("port for the runners' messages to each other")),
    parallel: Options.integer("parallel").pipe(Options.withDefault(1), Options.withDescription("trials run at once on this runner")),
    failover: Options.integer("failover").pipe(
      Options.withDefault(30),
      Options.withDescription("seconds of silence after which a runner's trials move to another runner")
    ),
    out: Options.directory("out").pipe(
      Options.withDefault(path.join("runs", "cluster")),
      Options.withDescription("where this runner's jobs go: OUT/<sweep>/trials/<trial>, OUT/evals/<job>, OUT/checkpoints/<sha256>")
    ),
    insecure: Options.boolean("insecure").pipe(
      Options.withDescription(
        "start without a cluster secret: anyone who reaches the port (on loopback, any user of this machine) can send the cluster's messages"
      )
    )
  },
  ({ db: dbFlag, host, port, parallel, failover, out, insecure }) =>
    Effect.gen(function*() {
      const db = yield* databaseFlag(dbFlag)
      if (parallel < 1) return yield* printError("--parallel must be at least 1")
      if (failover < 3) return yield* printError("--failover must be at least 3 seconds")
      const secret = yield* clusterSecret
      if (secret.length === 0 && !insecure) {
        return yield* printError(
          `runner --host ${host}: no cluster secret, so nothing would check who sends this runner work — ${
            isLoopback(host) ? "on loopback, any user of this machine" : "anyone who reaches the port"
          }. Set VIRL_CLUSTER_SECRET (or VIRL_CLUSTER_SECRET_FILE) to the same secret on every runner and submitter ` +
            `(at least ${MIN_SECRET} characters: \`openssl rand -hex 32\`), or pass --insecure where you trust everyone who can connect`
        )
      }
      const url = yield* parseDatabaseUrl(db)
      // a database of another virl is refused before anything starts
      yield* Effect.provide(ensureSchema(url), sqlLayer(url))
      yield* defaultDatasets(progressBar("rendering panoramas"))
      const prepareLock = yield* Effect.makeSemaphore(1)
      const layer = runnerLayer({
        db: url,
        host,
        port,
        parallel,
        failover,
        out: path.resolve(out),
        runTrial: runHere(prepareLock, failover),
        runEval: evalHere(url, path.resolve(out)),
        secret
      }, trialFolder)
      exitAfterGrace()
      console.error(
        `runner ${host}:${port} on ${url.shown}: up to ${parallel} job(s) at once, folders in ${path.resolve(out)}; ${
          secret.length > 0 ? "connections must prove the cluster secret (TLS with a key derived from it)" : "no cluster secret (--insecure)"
        } (Ctrl-C stops it; its jobs move to another runner)`
      )
      yield* Layer.launch(layer).pipe(Effect.provide(quiet))
    }).pipe(Effect.catchAll(reportError))
).pipe(
  Command.withDescription(
    "Start a cluster runner: it takes the sweep trials (`virl sweep FILE --sharding cluster --db URL`) and evaluation suites (`virl eval ... --sharding cluster --db URL`) submitted to the cluster and runs them."
  )
)

/**
 * `--sharding cluster` sends a command's jobs (sweep trials, evaluation suites) to the cluster's
 * runners and is taken out of the overrides; any other value (local, workers[:N]) stays the
 * config key: where each run's environments step.
 */
export const clusterSharding = (overrides: Readonly<Record<string, string>>): { readonly cluster: boolean; readonly overrides: Record<string, string> } => {
  const { sharding, ...rest } = overrides
  return sharding === "cluster" ? { cluster: true, overrides: rest } : { cluster: false, overrides: { ...overrides } }
}

/** `--db`, or else $VIRL_DB (an environment variable does not show in `ps` as a flag does). */
/** The cluster's shared secret (VIRL_CLUSTER_SECRET or VIRL_CLUSTER_SECRET_FILE); empty when neither is set. */
const clusterSecret = Effect.suspend(() => readSecret(textSetting("VIRL_CLUSTER_SECRET"), textSetting("VIRL_CLUSTER_SECRET_FILE")))

export const databaseFlag = (flag: Option.Option<string>): Effect.Effect<string, DatabaseError> =>
  Option.match(Option.orElse(flag, () => Option.fromNullable(textSetting("VIRL_DB"))), {
    onNone: () =>
      Effect.fail(new DatabaseError({ message: "no database: pass --db URL or set VIRL_DB (postgres://user:password@host:port/db or sqlite:PATH)" })),
    onSome: Effect.succeed
  })

const STATE_ORDER = ["running", "pending", "failed", "done"] as const

/** `virl sweep --status --db URL`: every sweep the database has seen, trial by trial. */
export const showStatus = (db: string, sweep: string | undefined) =>
  Effect.gen(function*() {
    const url = yield* parseDatabaseUrl(db)
    const rows = yield* Effect.provide(Effect.zipRight(ensureSchema(url), trialRows(url, sweep)), sqlLayer(url))
    if (rows.length === 0) {
      console.log(sweep === undefined ? `${url.shown}: no trials submitted yet` : `${url.shown}: no trials of ${sweep}`)
      return
    }
    const now = Date.now()
    const bySweep = new Map<string, TrialRow[]>()
    for (const r of rows) bySweep.set(r.sweep, [...(bySweep.get(r.sweep) ?? []), r])
    for (const [name, list] of bySweep) {
      const counts = STATE_ORDER.map((s) => `${list.filter((r) => r.state === s).length} ${s}`).join(", ")
      console.log(`${name}: ${list.length} trials — ${counts}`)
      for (const r of list) {
        const time = r.state === "running" && r.startedAt !== null
          ? `for ${((now - r.startedAt) / 1000).toFixed(0)} s`
          : r.finishedAt !== null && r.startedAt !== null
          ? `took ${((r.finishedAt - r.startedAt) / 1000).toFixed(0)} s`
          : ""
        console.log(
          `  ${r.state.padEnd(8)} ${r.label.padEnd(28)} ${(r.runner ?? "").padEnd(22)} attempts ${r.attempts} ${time}${
            r.message === null ? "" : `\n           ${r.message.split("\n")[0]}`
          }`
        )
      }
    }
  })

/**
 * `virl sweep FILE --sharding cluster --db URL`: submits every trial as a durable workflow, waits
 * for the runners to finish them, and returns their results.json texts by label (undefined: failed).
 */
export const submitSweep = (
  sweep: Sweep,
  file: string,
  db: string,
  options: { readonly quick: boolean; readonly overrides: Readonly<Record<string, unknown>>; readonly labels: ReadonlyArray<string> }
) =>
  Effect.gen(function*() {
    const url = yield* parseDatabaseUrl(db)
    const relative = path.relative(PROJECT_ROOT, path.resolve(file))
    if (projectFile(relative) === undefined) {
      return yield* new SubmitError({ message: `${file} is outside the project (${PROJECT_ROOT}): runners run only the project's own files` })
    }
    const digest = fileDigest(file)
    const payloads = options.labels.map(
      (label): Omit<TrialPayload, "round"> => ({
        sweep: sweep.name + (options.quick ? "-quick" : ""),
        label,
        file: relative,
        digest,
        quick: options.quick,
        overrides: JSON.stringify(options.overrides)
      })
    )
    // the tables (virl's and the cluster's) before the client's layer, which would make the cluster's at the same time as a runner
    yield* Effect.provide(ensureSchema(url), sqlLayer(url))
    return yield* Effect.gen(function*() {
      const ids: string[] = []
      for (const p of payloads) ids.push(yield* submitJob(TrialWorkflow, url, p, p))
      console.error(
        `${payloads.length} trials submitted to ${url.shown}; waiting for runners (virl runner --db ...); virl sweep --status --db ... shows progress`
      )
      const outcomes = yield* awaitAll(TrialWorkflow, ids, progressBar("trials"))
      return new Map(payloads.map((p, k) => [p.label, outcomes.get(ids[k]!)!] as const))
    }).pipe(Effect.provide(clientLayer(url, yield* clusterSecret)), Effect.provide(quiet))
  })

/** Writes the cluster's results into the sweep's folder as a local sweep would have. */
export const writeTrialResults = (dir: string, outcomes: ReadonlyMap<string, { ok: true; results: string } | { ok: false; message: string }>) => {
  const failures: string[] = []
  for (const [label, o] of outcomes) {
    const folder = path.join(dir, "trials", trialFolder(label))
    fs.mkdirSync(folder, { recursive: true })
    if (o.ok) writeFileAtomic(path.join(folder, "results.json"), o.results)
    else failures.push(`${label}: ${o.message}`)
  }
  return failures
}

/** A checkpoint folder's files, for the database. */
const checkpointFiles = (dir: string): Array<readonly [string, Uint8Array]> =>
  fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => [e.name, fs.readFileSync(path.join(dir, e.name))] as const)

/**
 * `virl eval --sharding cluster --db URL`: a checkpoint goes into the database (once, by content),
 * each suite becomes a durable job on the runners; waits, and returns each suite's metrics and
 * log, or its failure.
 */
export const submitEvals = (
  db: string,
  options: { readonly policy: string; readonly suites: ReadonlyArray<SuiteName>; readonly config: RunConfig; readonly data: string | null }
) =>
  Effect.gen(function*() {
    const url = yield* parseDatabaseUrl(db)
    const isCheckpoint = !["oracle", "random"].includes(options.policy)
    if (options.policy.startsWith("openai:")) {
      return yield* new SubmitError({ message: "--sharding cluster evaluates checkpoints, oracle or random; an openai: policy runs here" })
    }
    yield* Effect.provide(ensureSchema(url), sqlLayer(url))
    return yield* Effect.gen(function*() {
      let policy = options.policy
      if (isCheckpoint) {
        if (!fs.existsSync(path.join(options.policy, "checkpoint.json"))) {
          return yield* new SubmitError({ message: `--policy ${options.policy}: not a checkpoint folder (no checkpoint.json)` })
        }
        const bundle = bundleFiles(checkpointFiles(options.policy))
        yield* uploadBundle(url, bundle)
        policy = `checkpoint:${bundle.digest}`
      }
      const payloads = options.suites.map(
        (suite): Omit<EvalPayload, "round"> => ({ policy, name: options.policy, suite, config: JSON.stringify(options.config), data: options.data })
      )
      const ids: string[] = []
      for (const p of payloads) ids.push(yield* submitJob(EvalWorkflow, url, p, evalJob(p)))
      console.error(
        `${payloads.length} evaluation(s) submitted to ${url.shown}; waiting for runners (virl runner --db ...); virl sweep --status --db ... shows progress`
      )
      const outcomes = yield* awaitAll(EvalWorkflow, ids, progressBar("suites"))
      return new Map(options.suites.map((suite, k) => [suite, outcomes.get(ids[k]!)!] as const))
    }).pipe(Effect.provide(clientLayer(url, yield* clusterSecret)), Effect.provide(quiet))
  })
