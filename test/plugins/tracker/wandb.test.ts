import { Effect } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { appendRecord } from "../../../src/plugins/tracker/jsonl.ts"
import { make, uploadRun } from "../../../src/plugins/tracker/wandb.ts"

/** A stand-in for W&B's API on loopback that records every request: answers, fails or stays silent. */
interface Seen {
  readonly url: string
  readonly auth: string | undefined
  readonly body: any
}
let seen: Seen[] = []
let mode: "answer" | "silent" = "answer"
let failNext = 0
const server = http.createServer((req, res) => {
  let data = ""
  req.on("data", (c) => (data += c))
  req.on("end", () => {
    // a network that drops everything: never answer
    if (mode === "silent") return
    if (failNext > 0) {
      failNext--
      res.writeHead(503)
      res.end("busy")
      return
    }
    seen.push({ url: req.url ?? "", auth: req.headers.authorization, body: JSON.parse(data) })
    res.writeHead(200, { "content-type": "application/json" })
    res.end(
      JSON.stringify(req.url === "/graphql" ? { data: { upsertBucket: { bucket: { name: "r", project: { name: "p", entity: { name: "me" } } } } } } : {})
    )
  })
})
let base = ""
const root = fs.mkdtempSync(path.join(os.tmpdir(), "virl-wandb-"))
let runDir = ""
let n = 0
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
beforeEach(() => {
  seen = []
  mode = "answer"
  failNext = 0
  runDir = path.join(root, `run-${n++}`)
  fs.mkdirSync(runDir, { recursive: true })
})
afterAll(() => {
  server.closeAllConnections()
  server.close()
  fs.rmSync(root, { recursive: true, force: true })
})

const options = (extra: object = {}) => ({ apiKey: "secret", baseUrl: base, project: "p", timeoutMs: 2000, group: "study", intervalMs: 20, ...extra })
const train = (arm: string, seed: number, update: number) => ({ kind: "train", arm, seed, phase: "ppo", update, samples: 256, loss: 1 / update })
const evaluation = (arm: string, seed: number) => ({ kind: "eval", arm, seed, step: 2, samples: 512, suite: "indist", per_step_accuracy: 0.75 })
const until = async (done: () => boolean, ms = 5000) => {
  const end = Date.now() + ms
  while (!done() && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
  return done()
}
const history = (runId?: string) =>
  seen
    .filter((s) => s.url.endsWith("/file_stream") && (runId === undefined || s.url.includes(`/${runId}/`)))
    .flatMap((s) => (s.body.files["wandb-history.jsonl"]?.content ?? []).map((l: string) => JSON.parse(l)))
const created = () => seen.filter((s) => s.url === "/graphql").map((s) => s.body.variables)

describe("W&B, live", () => {
  it("streams each arm and seed's records to a W&B run of its own while the run goes on, grouped by the experiment", async () => {
    const warnings: string[] = []
    const tracker = make(runDir, options(), (l) => warnings.push(l))
    await Effect.runPromise(tracker.log(train("rl", 1, 1)))
    await Effect.runPromise(tracker.log(train("rl", 1, 2)))
    await Effect.runPromise(tracker.log(evaluation("sft", 1)))
    // before the run ends: the records are on the server
    expect(await until(() => history().length === 3)).toBe(true)
    expect(seen[0].auth).toBe(`Basic ${Buffer.from("api:secret").toString("base64")}`)
    expect(created().map((v) => [v.displayName, v.groupName, v.jobType])).toEqual([["rl seed 1", "study", "rl"], ["sft seed 1", "study", "sft"]])
    const [rl, sft] = created().map((v) => v.name)
    expect(rl).not.toBe(sft)
    // each kind of record on its own x-axis, every row with the samples seen
    expect(history(rl).map((r) => [r._step, r["train/step"], r.samples, r["ppo/loss"]])).toEqual([[0, 1, 256, 1], [1, 2, 256, 0.5]])
    expect(history(sft)).toMatchObject([{ _step: 0, "eval/step": 2, samples: 512, "eval/indist/per_step_accuracy": 0.75 }])
    await Effect.runPromise(tracker.log(train("rl", 1, 3)))
    await Effect.runPromise(tracker.close)
    const rlStreams = seen.filter((s) => s.url.includes(`/${rl}/file_stream`))
    // each batch starts where the acknowledged rows end
    let before = 0
    for (const file of rlStreams.map((s) => s.body.files["wandb-history.jsonl"]).filter((f) => f !== undefined)) {
      expect(file.offset).toBe(before)
      before += file.content.length
    }
    expect(history(rl).map((r) => r._step)).toEqual([0, 1, 2])
    expect(rlStreams.at(-1)!.body).toMatchObject({ complete: true, exitcode: 0 })
    expect(warnings).toEqual([])
  })

  it("creates each W&B run with its arm's config as W&B's client sends it, the metrics' x-axes defined, and sends a summary", async () => {
    const armConfig = { seed: 1, ppo_config: { clip_param: 0.1, ppo_epoch: 4 }, optimizer_config: { init_lr: 3e-4 } }
    fs.mkdirSync(path.join(runDir, "seed-1", "rl"), { recursive: true })
    fs.writeFileSync(path.join(runDir, "seed-1", "rl", "config.json"), JSON.stringify({ phase: "ppo", init: "x", config: armConfig }))
    fs.writeFileSync(path.join(runDir, "experiment.json"), JSON.stringify({ name: "study", arms: ["rl"] }))
    const tracker = make(runDir, options(), (l) => expect.fail(l))
    await Effect.runPromise(tracker.log(train("rl", 1, 1)))
    expect(await until(() => history().length === 1)).toBe(true)
    const config = JSON.parse(created()[0].config)
    // each key wrapped, as W&B's own client sends it, so that it becomes columns
    expect(config.seed).toEqual({ desc: null, value: 1 })
    expect(config.ppo_config).toEqual({ desc: null, value: { clip_param: 0.1, ppo_epoch: 4 } })
    expect(config.phase).toEqual({ desc: null, value: "ppo" })
    // define_metric's record: the axes first, then each metric with its axis's one-based index
    const m = config._wandb.value.m as Array<Record<string, unknown>>
    const axes = m.filter((e) => e["5"] === undefined).map((e) => e["1"])
    expect(axes).toEqual(["train/step", "eval/step", "kl/step", "samples"])
    expect(m).toContainEqual({ "1": "ppo/loss", "5": 1 })
    // an evaluation's metrics arrive later: the config is sent again with their axis
    await Effect.runPromise(tracker.log({ ...evaluation("rl", 1), step: 1, total: 1 }))
    expect(
      await until(() =>
        created().some((v) => JSON.parse(v.config)._wandb.value.m.some((e: Record<string, unknown>) => e["1"] === "eval/indist/per_step_accuracy"))
      )
    ).toBe(true)
    const last = JSON.parse(created().at(-1)!.config)._wandb.value.m as Array<Record<string, unknown>>
    expect(last).toContainEqual({ "1": "eval/indist/per_step_accuracy", "5": 2 })
    // the summary: the arm's final evaluations (from the run's records) and the experiment's table
    appendRecord(path.join(runDir, "evals.jsonl"), {
      seed: 1,
      arm: "rl",
      step: 2,
      total: 2,
      samples: 512,
      suite: "indist",
      metrics: { per_step_accuracy: 0.75, success_rate: 0.25, mean_reward: 1 }
    })
    await Effect.runPromise(tracker.summary({ seconds: 12, results: { arms: { rl: { indist: { per_step_accuracy: { mean: 0.7 } } } } } }))
    await Effect.runPromise(tracker.close)
    const summaries = seen.filter((s) => s.body.files?.["wandb-summary.json"] !== undefined).map((
      s
    ) => [s.url, JSON.parse(s.body.files["wandb-summary.json"].content[0])])
    const rl = created()[0].name
    expect(summaries.find(([url]) => url.includes(`/${rl}/`))![1]).toEqual({
      "eval/indist/per_step_accuracy": 0.75,
      "eval/indist/success_rate": 0.25,
      "eval/indist/mean_reward": 1
    })
    expect(summaries.find(([url]) => !url.includes(`/${rl}/`))![1]).toEqual({ "rl/indist/per_step_accuracy": 0.7, seconds: 12 })
    const experimentRun = created().find((v) => v.jobType === "experiment")!
    expect(JSON.parse(experimentRun.config).name).toEqual({ desc: null, value: "study" })
  })

  it("backs off when the service fails and sends every record once, in order, when it answers again", async () => {
    const warnings: string[] = []
    failNext = 2
    const tracker = make(runDir, options(), (l) => warnings.push(l))
    for (let u = 1; u <= 5; u++) await Effect.runPromise(tracker.log(train("rl", 2, u)))
    expect(await until(() => history().length === 5, 10_000)).toBe(true)
    expect(history().map((r) => r._step)).toEqual([0, 1, 2, 3, 4])
    expect(warnings[0]).toMatch(/^W&B: .*HTTP 503 busy; retrying with back-off/)
    await Effect.runPromise(tracker.close)
  }, 20_000)

  it("never blocks the run on a service that does not answer, and virl sync sends what it missed", async () => {
    mode = "silent"
    const warnings: string[] = []
    const tracker = make(runDir, options({ timeoutMs: 200 }), (l) => warnings.push(l))
    // the local record, as the run writes it
    const records = [train("rl", 1, 1), train("rl", 1, 2), evaluation("rl", 1)]
    fs.mkdirSync(path.join(runDir, "seed-1", "rl"), { recursive: true })
    for (const r of records) {
      const { kind: _kind, arm: _arm, seed: _seed, ...local } = r
      if (r.kind === "train") appendRecord(path.join(runDir, "seed-1", "rl", "metrics.jsonl"), local)
      else appendRecord(path.join(runDir, "metrics.jsonl"), r)
      // log() only queues: it returns at once however the network behaves
      await Effect.runPromise(tracker.log(r))
      await new Promise((r) => setTimeout(r, 2))
    }
    await Effect.runPromise(tracker.close)
    expect(warnings[0]).toMatch(/no answer within 200 ms; retrying with back-off/)
    expect(warnings.at(-1)).toMatch(/3 records not sent; virl sync .* sends them/)

    mode = "answer"
    const synced = await Effect.runPromise(uploadRun(runDir, options()))
    expect(synced).toEqual({ ok: true, message: expect.stringMatching(/^W&B: sent 3 records to 1 runs \(me\/p\/[0-9a-f]{12}\)$/) })
    expect(history().map((r) => [r._step, r["train/step"] ?? r["eval/step"], r.samples])).toEqual([[0, 1, 256], [1, 2, 256], [2, 2, 512]])
    // nothing twice: a second sync sends nothing new
    seen = []
    expect((await Effect.runPromise(uploadRun(runDir, options()))).message).toMatch(/sent 0 records/)
    expect(history()).toEqual([])
  }, 20_000)

  it("virl sync continues where the live stream stopped", async () => {
    const tracker = make(runDir, options(), () => undefined)
    fs.mkdirSync(path.join(runDir, "seed-3", "sft"), { recursive: true })
    const local = (u: number) => appendRecord(path.join(runDir, "seed-3", "sft", "metrics.jsonl"), { phase: "sft", epoch: u, samples: 10, loss: u })
    for (const u of [1, 2]) {
      local(u)
      await Effect.runPromise(tracker.log({ kind: "train", arm: "sft", seed: 3, phase: "sft", epoch: u, samples: 10, loss: u }))
      await new Promise((r) => setTimeout(r, 2))
    }
    await Effect.runPromise(tracker.close)
    expect(history().map((r) => r._step)).toEqual([0, 1])
    // the run wrote a third record the live stream never saw (killed before sending it)
    local(3)
    seen = []
    await Effect.runPromise(uploadRun(runDir, options()))
    expect(seen.filter((s) => s.url.endsWith("/file_stream"))[0].body.files["wandb-history.jsonl"]).toEqual({
      offset: 2,
      content: [expect.stringContaining('"_step":2')]
    })
  })

  it("goes on without the live stream of a W&B run whose record of progress is damaged", async () => {
    fs.mkdirSync(path.join(runDir, "wandb"), { recursive: true })
    fs.writeFileSync(path.join(runDir, "wandb", "rl-seed1.json"), "{")
    const warnings: string[] = []
    const tracker = make(runDir, options(), (l) => warnings.push(l))
    await Effect.runPromise(tracker.log(train("rl", 1, 1)))
    await Effect.runPromise(tracker.log(train("rl", 1, 2)))
    await Effect.runPromise(tracker.log(evaluation("sft", 1)))
    await Effect.runPromise(tracker.close)
    expect(warnings).toEqual([
      expect.stringMatching(/^W&B: .*wandb\/rl-seed1\.json: .*\(fix or delete it; deleted, the W&B run starts over\); rl-seed1 is not streamed live$/)
    ])
    expect(created().map((v) => v.displayName)).toEqual(["sft seed 1"])
  })

  it("warns once without a key and sends nothing", async () => {
    const warnings: string[] = []
    const tracker = make(runDir, options({ apiKey: undefined }), (l) => warnings.push(l))
    await Effect.runPromise(tracker.log(train("rl", 1, 1)))
    await Effect.runPromise(tracker.close)
    expect(warnings).toEqual([expect.stringMatching(/no WANDB_API_KEY; the run is kept locally/)])
    expect(seen).toEqual([])
    expect((await Effect.runPromise(uploadRun(runDir, options({ apiKey: undefined })))).ok).toBe(false)
  })
})
