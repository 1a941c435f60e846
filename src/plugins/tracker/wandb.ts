import { Effect } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { readRecords, writeFileAtomic } from "../../core/files.ts"
import { metricsOf, type TrackerService } from "../../core/tracker.ts"
import { textSetting } from "../../core/settings.ts"

/**
 * Weights & Biases as a live view of the run's record, through W&B's HTTP API (the GraphQL
 * `upsertBucket` mutation makes a run, its file stream takes history rows): one W&B run per arm
 * and seed (`<arm> seed <S>`, grouped by the experiment — a sweep's trial is an experiment of its
 * own), plus one for records of the whole experiment. Records are queued as they are logged and
 * sent every few seconds by a timer, never by the run's own fiber, so a slow or absent service
 * cannot block or fail training: a request that fails or gets no answer within the timeout is
 * tried again later with exponential back-off (1 s doubling to a minute), and what is still
 * queued when the run ends is left to `virl sync`, which replays the local record from where the
 * live stream stopped (RUN_DIR/wandb/<run>.json says how far each W&B run got).
 */
export interface WandbOptions {
  readonly apiKey: string | undefined
  readonly baseUrl: string
  readonly project: string
  readonly entity?: string
  readonly timeoutMs: number
  /** The W&B group of the run's W&B runs (the experiment's name). */
  readonly group?: string
  /** How often queued records are sent (default 5 s). */
  readonly intervalMs?: number
}

export const optionsFromEnv = (project: string): WandbOptions => ({
  apiKey: textSetting("WANDB_API_KEY"),
  baseUrl: textSetting("WANDB_BASE_URL") ?? "https://api.wandb.ai",
  project: textSetting("WANDB_PROJECT") ?? project,
  ...(textSetting("WANDB_ENTITY") === undefined ? {} : { entity: textSetting("WANDB_ENTITY")! }),
  timeoutMs: 15_000
})

/** How far one W&B run got: kept in RUN_DIR/wandb/<key>.json after every acknowledged batch. */
interface StreamState {
  readonly runId: string
  readonly entity: string
  readonly project: string
  readonly sent: number
}

const STATE_DIR = "wandb"
const BATCH = 1000
/** Past this many unsent rows a W&B run's live stream stops; `virl sync` sends them later. */
const MAX_QUEUE = 50_000
const MAX_BACKOFF_MS = 60_000

const UPSERT =
  `mutation UpsertBucket($id: String, $name: String, $project: String, $entity: String, $groupName: String, $config: JSONString, $displayName: String, $jobType: String) {
  upsertBucket(input: {id: $id, name: $name, modelName: $project, entityName: $entity, groupName: $groupName, config: $config, displayName: $displayName, jobType: $jobType}) {
    bucket { id name project { name entity { name } } }
  }
}`

const post = async (url: string, apiKey: string, body: unknown, timeoutMs: number): Promise<unknown> => {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Basic ${Buffer.from(`api:${apiKey}`).toString("base64")}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs)
  })
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${(await response.text()).slice(0, 200)}`)
  return response.json()
}

const reasonOf = (e: unknown, timeoutMs: number): string => {
  const error = e as Error
  if (error.name === "TimeoutError") return `no answer within ${timeoutMs} ms`
  return error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message
}

/** The W&B run a record belongs to: its arm and seed, or the experiment's own. */
export const streamKey = (record: Readonly<Record<string, unknown>>): string =>
  record["arm"] === undefined ? "experiment" : `${String(record["arm"])}-seed${String(record["seed"] ?? 0)}`

/** A W&B run's id: from the run folder's absolute path and the key, so one folder's arm and seed is always one W&B run. */
const runIdOf = (runDir: string, key: string): string => createHash("sha256").update(`${path.resolve(runDir)}\n${key}`).digest("hex").slice(0, 12)

/**
 * The x-axis of each kind of record: training by its update or epoch, evaluations and KL by their
 * evaluation point; every row also carries `samples` (training samples seen), the axis methods
 * share. W&B's `_step` only orders a run's rows.
 */
export const AXES = { train: "train/step", eval: "eval/step", kl: "kl/step", samples: "samples" } as const

const axisOf = (record: Readonly<Record<string, unknown>>): string => {
  const kind = String(record["kind"] ?? "train")
  return kind === "eval" ? AXES.eval : kind === "kl" ? AXES.kl : AXES.train
}

/** One history row: the record's metrics by their live names, its axes, and W&B's step and time. */
const rowOf = (record: Readonly<Record<string, unknown>>, index: number, seconds: number): string => {
  const { scalars } = metricsOf(record)
  const kind = String(record["kind"] ?? "train")
  const point = Number(kind === "train" ? (record["update"] ?? record["epoch"]) : record["step"])
  const samples = Number(record["samples"])
  return JSON.stringify({
    ...Object.fromEntries(scalars),
    ...(Number.isFinite(point) ? { [axisOf(record)]: point } : {}),
    ...(Number.isFinite(samples) ? { [AXES.samples]: samples } : {}),
    _step: index,
    _timestamp: seconds
  })
}

/**
 * A run's config as W&B's own client sends it — each key `{value, desc}`, so that it becomes
 * columns — with the metrics' x-axes defined the way its `define_metric` records them (under
 * `_wandb.m`: a metric's name is field 1, its step metric's one-based index field 5).
 */
export const wandbConfig = (config: Readonly<Record<string, unknown>>, metrics: ReadonlyMap<string, string>): string => {
  const axes: ReadonlyArray<string> = [...new Set(Object.values(AXES))]
  const m: Array<Record<string, unknown>> = axes.map((axis) => ({ "1": axis }))
  for (const [name, axis] of metrics) m.push({ "1": name, "5": axes.indexOf(axis) + 1 })
  return JSON.stringify({
    ...Object.fromEntries(Object.entries(config).map(([k, v]) => [k, { desc: null, value: v }])),
    _wandb: { desc: null, value: { m } }
  })
}

/** What a W&B run is about: an arm's resolved config (seed-S/ARM/config.json), or the experiment's (experiment.json). */
const configOf = (runDir: string, key: string): Record<string, unknown> => {
  const file = key === "experiment"
    ? path.join(runDir, "experiment.json")
    : path.join(runDir, `seed-${key.replace(/^.*-seed/, "")}`, key.replace(/-seed\d+$/, ""), "config.json")
  try {
    const read = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>
    return key === "experiment" ? read : { ...(read["config"] as Record<string, unknown> | undefined ?? {}), phase: read["phase"] }
  } catch {
    return {}
  }
}

/** One W&B run's queue: rows not yet acknowledged, sent in order at the acknowledged offset. */
class Stream {
  readonly key: string
  readonly statePath: string
  sent = 0
  runId: string
  entity: string | undefined
  created = false
  queue: string[] = []
  queued = 0
  failures = 0
  retryAt = 0
  stopped = false
  /** Each metric's x-axis, as its rows arrive; `defined` of them have been sent in the run's config. */
  readonly metrics = new Map<string, string>()
  defined = 0
  /** The run's summary, to send (with the next push). */
  summary: Record<string, number> | undefined

  constructor(
    readonly runDir: string,
    key: string,
    readonly options: WandbOptions
  ) {
    this.key = key
    this.statePath = path.join(runDir, STATE_DIR, `${key}.json`)
    let previous: StreamState | undefined
    try {
      previous = fs.existsSync(this.statePath) ? (JSON.parse(fs.readFileSync(this.statePath, "utf8")) as StreamState) : undefined
    } catch (e) {
      throw new Error(`${this.statePath}: ${(e as Error).message} (fix or delete it; deleted, the W&B run starts over)`)
    }
    this.runId = previous?.runId ?? runIdOf(runDir, key)
    this.entity = previous?.entity ?? options.entity
    this.sent = previous?.sent ?? 0
    this.queued = this.sent
  }

  add(record: Readonly<Record<string, unknown>>, seconds = Date.now() / 1000): void {
    if (this.stopped) return
    for (const [name] of metricsOf(record).scalars) if (!this.metrics.has(name)) this.metrics.set(name, axisOf(record))
    this.queue.push(rowOf(record, this.queued++, seconds))
  }

  /** Whether anything waits to be sent: rows, a summary, or metrics the config does not define yet. */
  get pending(): boolean {
    return this.queue.length > 0 || this.summary !== undefined || this.metrics.size > this.defined || !this.created
  }

  /**
   * Makes the W&B run (once, with its config; again when new metrics need their x-axis defined),
   * then sends one batch and the summary; throws what went wrong.
   */
  async push(): Promise<void> {
    const { apiKey, baseUrl, project, timeoutMs } = this.options
    if (!this.created || this.metrics.size > this.defined) {
      const defining = this.metrics.size
      const [arm, seed] = this.key === "experiment" ? [undefined, undefined] : [this.key.replace(/-seed\d+$/, ""), this.key.replace(/^.*-seed/, "")]
      const reply = (await post(
        `${baseUrl}/graphql`,
        apiKey!,
        {
          query: UPSERT,
          variables: {
            name: this.runId,
            project,
            entity: this.entity,
            groupName: this.options.group ?? path.basename(path.resolve(this.runDir)),
            config: wandbConfig(configOf(this.runDir, this.key), this.metrics),
            displayName: arm === undefined ? `${this.options.group ?? "experiment"}` : `${arm} seed ${seed}`,
            jobType: arm ?? "experiment"
          }
        },
        timeoutMs
      )) as { data?: { upsertBucket?: { bucket?: { project?: { entity?: { name?: string } } } } }; errors?: unknown }
      const entity = reply.data?.upsertBucket?.bucket?.project?.entity?.name ?? this.entity
      if (reply.data?.upsertBucket?.bucket === undefined || entity === undefined) {
        throw new Error(`W&B refused the run: ${JSON.stringify(reply.errors ?? reply).slice(0, 200)}`)
      }
      this.entity = entity
      this.created = true
      this.defined = defining
    }
    if (this.queue.length > 0) {
      const rows = this.queue.slice(0, BATCH)
      await post(
        `${baseUrl}/files/${this.entity}/${project}/${this.runId}/file_stream`,
        apiKey!,
        { files: { "wandb-history.jsonl": { offset: this.sent, content: rows } } },
        timeoutMs
      )
      this.queue.splice(0, rows.length)
      this.sent += rows.length
      writeFileAtomic(this.statePath, JSON.stringify({ runId: this.runId, entity: this.entity!, project, sent: this.sent } satisfies StreamState, null, 2))
    }
    if (this.queue.length === 0 && this.summary !== undefined) {
      const summary = this.summary
      await post(
        `${baseUrl}/files/${this.entity}/${project}/${this.runId}/file_stream`,
        apiKey!,
        { files: { "wandb-summary.json": { offset: 0, content: [JSON.stringify(summary)] } } },
        timeoutMs
      )
      if (this.summary === summary) this.summary = undefined
    }
  }

  async finish(exitcode: number): Promise<void> {
    if (!this.created) return
    await post(
      `${this.options.baseUrl}/files/${this.entity}/${this.options.project}/${this.runId}/file_stream`,
      this.options.apiKey!,
      { files: {}, complete: true, exitcode },
      this.options.timeoutMs
    )
  }
}

/**
 * The live W&B view: `log` only queues (never waits on the network); a timer sends what is queued.
 * Problems become one warning per spell of failures, never a failed or blocked run.
 */
export const make = (runDir: string, options: WandbOptions, warn: (line: string) => void): TrackerService => {
  const streams = new Map<string, Stream>()
  const unreadable = new Set<string>()
  const interval = options.intervalMs ?? 5000
  let timer: NodeJS.Timeout | undefined
  let flushing: Promise<void> | undefined
  const hasKey = options.apiKey !== undefined && options.apiKey !== ""
  if (!hasKey) warn(`W&B: no WANDB_API_KEY; the run is kept locally (upload later with virl sync ${runDir})`)

  const pushAll = async () => {
    for (const stream of streams.values()) {
      while (!stream.stopped && Date.now() >= stream.retryAt && stream.pending) {
        try {
          await stream.push()
          if (stream.failures > 0) warn(`W&B: ${stream.key} sends again`)
          stream.failures = 0
        } catch (e) {
          stream.failures++
          stream.retryAt = Date.now() + Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (stream.failures - 1))
          if (stream.failures === 1) {
            warn(`W&B: ${reasonOf(e, options.timeoutMs)}; retrying with back-off (the run goes on; virl sync ${runDir} replays what is missed)`)
          }
          break
        }
      }
    }
  }
  const flush = (): Promise<void> => {
    flushing ??= pushAll().finally(() => (flushing = undefined))
    return flushing
  }

  return {
    log: (record) =>
      Effect.sync(() => {
        if (!hasKey) return
        const key = streamKey(record)
        if (unreadable.has(key)) return
        let stream = streams.get(key)
        if (stream === undefined) {
          try {
            stream = new Stream(runDir, key, options)
          } catch (e) {
            // a damaged record of how far this W&B run got: no live stream for it, the run goes on
            unreadable.add(key)
            warn(`W&B: ${(e as Error).message}; ${key} is not streamed live`)
            return
          }
          streams.set(key, stream)
        }
        stream.add(record)
        if (stream.queue.length > MAX_QUEUE) {
          stream.stopped = true
          stream.queue = []
          warn(`W&B: more than ${MAX_QUEUE} records of ${key} wait to be sent; its live stream stops (virl sync ${runDir} sends the rest)`)
        }
        if (timer === undefined) {
          timer = setInterval(() => void flush(), interval)
          // the timer never keeps the process alive: the run's end closes the tracker
          timer.unref()
        }
      }),
    summary: (record) =>
      Effect.sync(() => {
        if (!hasKey) return
        for (const [key, summary] of summariesOf(runDir, record)) {
          let stream = streams.get(key)
          if (stream === undefined && !unreadable.has(key)) {
            try {
              stream = new Stream(runDir, key, options)
              streams.set(key, stream)
            } catch (e) {
              unreadable.add(key)
              warn(`W&B: ${(e as Error).message}; ${key} is not streamed live`)
            }
          }
          if (stream !== undefined && !stream.stopped) stream.summary = summary
        }
      }),
    close: Effect.promise(async () => {
      if (timer !== undefined) clearInterval(timer)
      if (!hasKey) return
      // what is queued, once more: time for a request already under way to end (each is bounded
      // by the timeout, and its failure is then reported) and for one more try
      const deadline = Date.now() + 2 * options.timeoutMs
      for (const stream of streams.values()) stream.retryAt = 0
      while (Date.now() < deadline && [...streams.values()].some((s) => !s.stopped && s.pending && s.failures === 0)) {
        await Promise.race([flush(), new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())])
      }
      let unsent = 0
      for (const stream of streams.values()) {
        unsent += stream.queued - stream.sent
        if (stream.queue.length === 0 && !stream.stopped) await stream.finish(0).catch(() => undefined)
      }
      if (unsent > 0) warn(`W&B: ${unsent} records not sent; virl sync ${runDir} sends them`)
    })
  }
}

/**
 * Each W&B run's summary at the end of a run: for an arm and seed, its final evaluations
 * (`eval/<suite>/<metric>`, from evals.jsonl, whichever process ran them) and its final KL; for
 * the experiment, each arm's means over seeds and the run's seconds.
 */
export const summariesOf = (runDir: string, record: Readonly<Record<string, unknown>>): Map<string, Record<string, number>> => {
  const out = new Map<string, Record<string, number>>()
  const put = (key: string, name: string, value: unknown) => {
    if (typeof value !== "number" || !Number.isFinite(value)) return
    out.set(key, { ...(out.get(key) ?? {}), [name]: value })
  }
  const read = (file: string) => readRecords<Record<string, unknown>>(path.join(runDir, file), { repair: false })
  for (const e of read("evals.jsonl")) {
    if (e["step"] !== e["total"]) continue
    const key = `${String(e["arm"])}-seed${String(e["seed"])}`
    const metrics = (e["metrics"] ?? {}) as Record<string, unknown>
    for (const m of ["per_step_accuracy", "success_rate", "mean_reward"]) put(key, `eval/${String(e["suite"])}/${m}`, metrics[m])
  }
  for (const k of read("kl.jsonl")) if (k["step"] === k["total"]) put(`${String(k["arm"])}-seed${String(k["seed"])}`, "kl/total", k["kl"])
  const results = (record["results"] ?? {}) as { arms?: Record<string, Record<string, Record<string, { mean?: number }>>> }
  for (const [arm, suites] of Object.entries(results.arms ?? {})) {
    for (const [suite, metrics] of Object.entries(suites)) for (const [m, stat] of Object.entries(metrics)) put("experiment", `${arm}/${suite}/${m}`, stat.mean)
  }
  put("experiment", "seconds", record["seconds"])
  return out
}

/** The local record of a run folder by W&B run, in the order the records were made. */
const localRecords = (runDir: string): Map<string, Array<Record<string, unknown>>> => {
  // a record being appended by a live run is left alone; a damaged one is an error naming its file and line
  const read = (file: string) => readRecords<Record<string, unknown>>(file, { repair: false })
  const all: Array<Record<string, unknown>> = [...read(path.join(runDir, "metrics.jsonl"))]
  for (const seedDir of fs.existsSync(runDir) ? fs.readdirSync(runDir).filter((d) => /^seed-\d+$/.test(d)) : []) {
    const seed = Number(seedDir.slice(5))
    for (const arm of fs.readdirSync(path.join(runDir, seedDir))) {
      const file = path.join(runDir, seedDir, arm, "metrics.jsonl")
      all.push(...read(file).map((r) => ({ kind: "train", arm, seed, ...r })))
    }
  }
  const time = (r: Record<string, unknown>) => Date.parse(String(r["time"] ?? "")) || 0
  const byStream = new Map<string, Array<Record<string, unknown>>>()
  for (const r of [...all].sort((a, b) => time(a) - time(b))) {
    const key = streamKey(r)
    const records = byStream.get(key)
    if (records === undefined) byStream.set(key, [r])
    else records.push(r)
  }
  return byStream
}

/**
 * Sends what RUN_DIR's local record holds and W&B has not acknowledged (live or by an earlier
 * sync), one W&B run per arm and seed, then marks each complete. Never fails: returns what happened.
 */
export const uploadRun = (runDir: string, options: WandbOptions): Effect.Effect<{ readonly ok: boolean; readonly message: string }> =>
  Effect.promise(async () => {
    if (options.apiKey === undefined || options.apiKey === "") {
      return { ok: false, message: "W&B: no WANDB_API_KEY; the run is kept locally (upload later with virl sync)" }
    }
    let sent = 0
    const runs: string[] = []
    try {
      const results = path.join(runDir, "results.json")
      const summaries = fs.existsSync(results) ? summariesOf(runDir, { results: JSON.parse(fs.readFileSync(results, "utf8")) }) : new Map()
      for (const [key, records] of localRecords(runDir)) {
        const stream = new Stream(runDir, key, options)
        const from = stream.sent
        // every record names its metrics (their x-axes go into the config), the unsent ones are sent
        for (const r of records.slice(0, from)) for (const [name] of metricsOf(r).scalars) if (!stream.metrics.has(name)) stream.metrics.set(name, axisOf(r))
        stream.summary = summaries.get(key)
        for (const r of records.slice(from)) stream.add(r, (Date.parse(String(r["time"] ?? "")) || Date.now()) / 1000)
        do await stream.push()
        while (stream.pending)
        await stream.finish(0)
        sent += records.length - from
        runs.push(`${stream.entity}/${options.project}/${stream.runId}`)
      }
      return { ok: true, message: `W&B: sent ${sent} records to ${runs.length} runs (${runs.join(", ")})` }
    } catch (e) {
      return { ok: false, message: `W&B upload failed (${reasonOf(e, options.timeoutMs)}); the run is kept locally, retry with virl sync ${runDir}` }
    }
  })
