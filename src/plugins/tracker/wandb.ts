import { Effect, Layer } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { writeFileAtomic } from "../../core/files.ts"
import { Tracker, type TrackerService } from "../../core/tracker.ts"
import * as Jsonl from "./jsonl.ts"
import { textSetting } from "../../core/settings.ts"

/**
 * Weights & Biases as an uploader of the local record: the run always writes JSONL; this sends
 * RUN_DIR/metrics.jsonl (as history) and summary.json through W&B's HTTP API (the GraphQL
 * `upsertBucket` mutation, then the run's file stream). Every request has a timeout; a missing
 * key, a refused connection or a network that drops packets ends in a warning, never a hang or
 * a failed run. What was sent is remembered in RUN_DIR/wandb.json, so `virl sync` resumes.
 */
export interface WandbOptions {
  readonly apiKey: string | undefined
  readonly baseUrl: string
  readonly project: string
  readonly entity?: string
  readonly timeoutMs: number
}

export const optionsFromEnv = (project: string): WandbOptions => ({
  apiKey: textSetting("WANDB_API_KEY"),
  baseUrl: textSetting("WANDB_BASE_URL") ?? "https://api.wandb.ai",
  project: textSetting("WANDB_PROJECT") ?? project,
  ...(textSetting("WANDB_ENTITY") === undefined ? {} : { entity: textSetting("WANDB_ENTITY")! }),
  timeoutMs: 15_000
})

interface SyncState {
  readonly runId: string
  readonly entity: string
  readonly project: string
  readonly sentLines: number
}

const STATE = "wandb.json"

const UPSERT = `mutation UpsertBucket($id: String, $name: String, $project: String, $entity: String, $config: JSONString, $displayName: String) {
  upsertBucket(input: {id: $id, name: $name, modelName: $project, entityName: $entity, config: $config, displayName: $displayName}) {
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

/** A run folder's W&B id: derived from its absolute path, so one folder is always one W&B run. */
const runIdOf = (runDir: string): string => createHash("sha256").update(path.resolve(runDir)).digest("hex").slice(0, 12)

/** Uploads what RUN_DIR holds and W&B has not seen yet. Never fails: returns what happened. */
export const uploadRun = (runDir: string, options: WandbOptions): Effect.Effect<{ readonly ok: boolean; readonly message: string }> =>
  Effect.promise(async () => {
    if (options.apiKey === undefined || options.apiKey === "") {
      return { ok: false, message: "W&B: no WANDB_API_KEY; the run is kept locally (upload later with virl sync)" }
    }
    try {
      const statePath = path.join(runDir, STATE)
      const previous = fs.existsSync(statePath) ? (JSON.parse(fs.readFileSync(statePath, "utf8")) as SyncState) : undefined
      const config = fs.existsSync(path.join(runDir, "config.json")) ? fs.readFileSync(path.join(runDir, "config.json"), "utf8") : "{}"
      const runId = previous?.runId ?? runIdOf(runDir)
      const reply = (await post(
        `${options.baseUrl}/graphql`,
        options.apiKey,
        {
          query: UPSERT,
          variables: { name: runId, project: options.project, entity: options.entity, config, displayName: path.basename(path.resolve(runDir)) }
        },
        options.timeoutMs
      )) as { data?: { upsertBucket?: { bucket?: { name?: string; project?: { name?: string; entity?: { name?: string } } } } }; errors?: unknown }
      const bucket = reply.data?.upsertBucket?.bucket
      const entity = bucket?.project?.entity?.name ?? options.entity
      if (bucket === undefined || entity === undefined) throw new Error(`W&B refused the run: ${JSON.stringify(reply.errors ?? reply).slice(0, 200)}`)
      const metricsFile = path.join(runDir, "metrics.jsonl")
      const lines = fs.existsSync(metricsFile) ? fs.readFileSync(metricsFile, "utf8").split("\n").filter((l) => l.trim() !== "") : []
      const sent = previous?.sentLines ?? 0
      const history = lines.slice(sent).map((l, i) => JSON.stringify({ ...(JSON.parse(l) as object), _step: sent + i }))
      const files: Record<string, { offset: number; content: string[] }> = { "wandb-history.jsonl": { offset: sent, content: history } }
      const summaryFile = path.join(runDir, "results.json")
      if (fs.existsSync(summaryFile)) files["wandb-summary.json"] = { offset: 0, content: [JSON.stringify(JSON.parse(fs.readFileSync(summaryFile, "utf8")))] }
      await post(
        `${options.baseUrl}/files/${entity}/${options.project}/${runId}/file_stream`,
        options.apiKey,
        { files, complete: true, exitcode: 0 },
        options.timeoutMs
      )
      writeFileAtomic(statePath, JSON.stringify({ runId, entity, project: options.project, sentLines: lines.length } satisfies SyncState, null, 2))
      return { ok: true, message: `W&B: sent ${history.length} records to ${entity}/${options.project}/${runId}` }
    } catch (e) {
      const error = e as Error
      const reason = error.name === "TimeoutError"
        ? `no answer within ${options.timeoutMs} ms`
        : error.cause instanceof Error
        ? `${error.message}: ${error.cause.message}`
        : error.message
      return { ok: false, message: `W&B upload failed (${reason}); the run is kept locally, retry with virl sync ${runDir}` }
    }
  })

/** JSONL as always, plus an upload bounded in time when the run closes; problems become warnings. */
export const make = (runDir: string, options: WandbOptions, warn: (line: string) => void): TrackerService => {
  const local = Jsonl.make(runDir)
  return {
    ...local,
    close: uploadRun(runDir, options).pipe(Effect.map((r) => warn(r.message)))
  }
}

export const layer = (runDir: string, options: WandbOptions, warn: (line: string) => void) => Layer.sync(Tracker, () => make(runDir, options, warn))
