import { Effect } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { uploadRun } from "../../../src/plugins/tracker/wandb.ts"

const seen: Array<{ url: string; auth: string | undefined; body: any }> = []
let silentServer = false
const server = http.createServer((req, res) => {
  let data = ""
  req.on("data", (c) => (data += c))
  req.on("end", () => {
    if (silentServer) return // a network that drops everything: never answer
    seen.push({ url: req.url ?? "", auth: req.headers.authorization, body: JSON.parse(data) })
    res.writeHead(200, { "content-type": "application/json" })
    res.end(
      JSON.stringify(req.url === "/graphql" ? { data: { upsertBucket: { bucket: { name: "r1", project: { name: "p", entity: { name: "me" } } } } } } : {})
    )
  })
})
let base = ""
const run = fs.mkdtempSync(path.join(os.tmpdir(), "virl-wandb-"))
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  fs.writeFileSync(path.join(run, "metrics.jsonl"), '{"a":1}\n{"a":2}\n')
  fs.writeFileSync(path.join(run, "results.json"), '{"experiment":"x"}')
})
afterAll(() => {
  server.closeAllConnections()
  server.close()
  fs.rmSync(run, { recursive: true, force: true })
})

describe("the W&B uploader", () => {
  it("creates the run, streams the history and resumes where it stopped", async () => {
    const options = { apiKey: "secret", baseUrl: base, project: "p", timeoutMs: 2000 }
    const first = await Effect.runPromise(uploadRun(run, options))
    expect(first).toEqual({ ok: true, message: expect.stringMatching(/sent 2 records to me\/p\//) })
    expect(seen[0].auth).toBe(`Basic ${Buffer.from("api:secret").toString("base64")}`)
    const stream = seen[1]
    expect(stream.url).toMatch(/^\/files\/me\/p\/[a-z0-9]+\/file_stream$/)
    expect(stream.body.files["wandb-history.jsonl"].content.map((l: string) => JSON.parse(l))).toEqual([
      { a: 1, _step: 0 },
      { a: 2, _step: 1 }
    ])
    fs.appendFileSync(path.join(run, "metrics.jsonl"), '{"a":3}\n')
    const second = await Effect.runPromise(uploadRun(run, options))
    expect(second.message).toMatch(/sent 1 records/)
    expect(seen[3].body.files["wandb-history.jsonl"]).toEqual({ offset: 2, content: [JSON.stringify({ a: 3, _step: 2 })] })
  })

  it("warns instead of failing or hanging without a key or without an answer", async () => {
    const none = await Effect.runPromise(uploadRun(run, { apiKey: undefined, baseUrl: base, project: "p", timeoutMs: 500 }))
    expect(none.ok).toBe(false)
    expect(none.message).toMatch(/no WANDB_API_KEY/)
    silentServer = true
    const hung = await Effect.runPromise(uploadRun(run, { apiKey: "k", baseUrl: base, project: "p", timeoutMs: 300 }))
    expect(hung.ok).toBe(false)
    expect(hung.message).toMatch(/no answer within 300 ms/)
  })
})
