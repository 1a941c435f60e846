import { Effect } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { PolicyInput } from "../../../src/core/policy.ts"
import { make } from "../../../src/plugins/policy/openai.ts"

const requests: Array<{ auth: string | undefined; body: any }> = []
let failuresLeft = 0
const server = http.createServer((req, res) => {
  let data = ""
  req.on("data", (c) => (data += c))
  req.on("end", () => {
    if (failuresLeft-- > 0) {
      res.writeHead(503).end("busy")
      return
    }
    requests.push({ auth: req.headers.authorization, body: JSON.parse(data) })
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ choices: [{ message: { content: '{"action": "forward()"}' } }] }))
  })
})
let base = ""
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
})
afterAll(() => server.close())

const input: PolicyInput = {
  chat: [{ role: "user", content: [{ type: "image" }, { type: "text", text: "Where now?" }] }],
  image: { width: 2, height: 2, rgb: new Uint8Array(12).fill(200) },
  info: {}
}
const options = { baseUrl: base, model: "m", apiKey: "k", concurrency: 2, retries: 2, timeoutMs: 5000, backoffMs: 10, maxTokens: 64 }

describe("the openai policy", () => {
  it("sends the chat with the image inline and returns the reply, retrying a busy server", async () => {
    failuresLeft = 1
    const policy = make({ ...options, baseUrl: base })
    const [out] = await Effect.runPromise(policy.act([input], { temperature: 0.2, greedy: false }))
    expect(out.text).toBe('{"action": "forward()"}')
    const sent = requests.at(-1)!
    expect(sent.auth).toBe("Bearer k")
    expect(sent.body.model).toBe("m")
    expect(sent.body.messages[0].content[0].image_url.url).toMatch(/^data:image\/png;base64,/)
    expect(sent.body.messages[0].content[1]).toEqual({ type: "text", text: "Where now?" })
  })

  it("fails with the URL named when the endpoint cannot be reached", async () => {
    const policy = make({ ...options, baseUrl: "http://127.0.0.1:9/v1", retries: 1 })
    const error = await Effect.runPromise(Effect.flip(policy.act([input], { temperature: 0, greedy: true })))
    expect(String(error)).toMatch(/http:\/\/127\.0\.0\.1:9\/v1\/chat\/completions unreachable after 2 attempts/)
  })
})
