import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import type * as tls from "node:tls"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { projectFile } from "../../src/cli/cluster.ts"
import { PROJECT_ROOT } from "../../src/cluster/workflows.ts"
import { authenticatedServer, connectAuthenticated, isLoopback, MIN_SECRET, readSecret } from "../../src/cluster/transport.ts"

const SECRET = Buffer.from("correct horse battery staple, and then some more")
const refusals: string[] = []
let port = 0
/** A runner's side in miniature: TLS with the secret's key, then an echo. */
const server = authenticatedServer(SECRET, (conn) => {
  conn.resume()
  conn.pipe(conn)
}, (line) => refusals.push(line))
beforeAll(() => new Promise<void>((r) => server.listen(0, "127.0.0.1", () => ((port = (server.address() as net.AddressInfo).port), r()))))
afterAll(() => server.close())

const echo = (socket: tls.TLSSocket, text: string) =>
  new Promise<string>((resolve) => {
    socket.resume()
    socket.once("data", (d) => resolve(String(d)))
    socket.write(text)
  })

/** Refusals logged after `before`, once at least `n` have come. */
const refusedSince = async (before: number, n: number) => {
  for (let i = 0; i < 100 && refusals.length < before + n; i++) await new Promise((r) => setTimeout(r, 20))
  return refusals.slice(before)
}

/**
 * A TCP relay in front of the server that records what the client sends and can change one byte
 * of it, `at` bytes in (counted over the whole stream).
 */
const relay = (options: { readonly flipAt?: number } = {}) =>
  new Promise<{ port: number; sent: Buffer[]; close: () => void }>((resolve) => {
    const sent: Buffer[] = []
    let seen = 0
    const proxy = net.createServer((client) => {
      const upstream = net.createConnection({ host: "127.0.0.1", port })
      client.on("data", (d: Buffer) => {
        sent.push(Buffer.from(d))
        const chunk = Buffer.from(d)
        if (options.flipAt !== undefined && seen <= options.flipAt && options.flipAt < seen + chunk.length) chunk[options.flipAt - seen]! ^= 0x01
        seen += d.length
        upstream.write(chunk)
      })
      upstream.on("data", (d) => client.write(d))
      for (const s of [client, upstream]) s.on("error", () => undefined)
      client.on("close", () => upstream.destroy())
      upstream.on("close", () => client.destroy())
    })
    proxy.listen(0, "127.0.0.1", () => resolve({ port: (proxy.address() as net.AddressInfo).port, sent, close: () => proxy.close() }))
  })

describe("the cluster's transport (TLS with a key derived from the secret)", () => {
  it("lets a peer holding the secret through, and its bytes reach the other side intact", async () => {
    const socket = await connectAuthenticated("127.0.0.1", port, SECRET)
    expect(await echo(socket, "hello")).toBe("hello")
    socket.destroy()
  })

  it("refuses a peer with another secret on both sides, and the server goes on", async () => {
    const before = refusals.length
    await expect(connectAuthenticated("127.0.0.1", port, Buffer.from("a guess that is long enough but wrong!!"))).rejects.toThrow(
      /refused this process: the cluster secrets differ/
    )
    expect((await refusedSince(before, 1))[0]).toMatch(/^refused a connection from 127\.0\.0\.1:\d+: it does not hold the cluster secret/)
    const socket = await connectAuthenticated("127.0.0.1", port, SECRET)
    expect(await echo(socket, "still here")).toBe("still here")
    socket.destroy()
  })

  it("never sends the secret, and refuses a recorded session replayed on a new connection", async () => {
    const r = await relay()
    const socket = await connectAuthenticated("127.0.0.1", r.port, SECRET)
    expect(await echo(socket, "recorded")).toBe("recorded")
    socket.destroy()
    const recorded = Buffer.concat(r.sent)
    expect(recorded.includes(SECRET)).toBe(false)
    r.close()
    const before = refusals.length
    const replay = net.createConnection({ host: "127.0.0.1", port }, () => replay.write(recorded))
    replay.on("error", () => undefined)
    const answered: Buffer[] = []
    replay.on("data", (d) => answered.push(d))
    await new Promise((done) => replay.on("close", done))
    // the server's handshake never completes: whatever it answered, no echo of "recorded"
    expect(Buffer.concat(answered).includes(Buffer.from("recorded"))).toBe(false)
    expect((await refusedSince(before, 1)).length).toBeGreaterThan(0)
  })

  it("drops a connection whose messages were changed on the way", async () => {
    // the handshake passes untouched; a byte of the first message after it is flipped
    const probe = await relay()
    const clean = await connectAuthenticated("127.0.0.1", probe.port, SECRET)
    const handshake = Buffer.concat(probe.sent).length
    clean.destroy()
    probe.close()
    const r = await relay({ flipAt: handshake + 8 })
    const socket = await connectAuthenticated("127.0.0.1", r.port, SECRET)
    socket.resume()
    const got: string[] = []
    socket.on("data", (d) => got.push(String(d)))
    const before = refusals.length
    socket.write("a message someone changes")
    await new Promise((done) => socket.on("close", done))
    expect(got).toEqual([])
    expect((await refusedSince(before, 1))[0]).toMatch(/^dropped a connection from 127\.0\.0\.1:\d+: /)
    r.close()
  })

  it("refuses a stranger's bytes, naming the protocol", async () => {
    const before = refusals.length
    await new Promise<void>((resolve) => {
      const s = net.createConnection({ host: "127.0.0.1", port }, () => s.write(Buffer.alloc(64, 1)))
      s.resume()
      s.on("error", () => undefined)
      s.on("close", () => resolve())
    })
    expect((await refusedSince(before, 1))[0]).toMatch(/does not speak the cluster's protocol/)
  })

  it("refuses a secret too short to be safe, from the variable or the file", () => {
    const short = Effect.runSync(Effect.either(readSecret("s3cret", undefined)))
    expect(Either.isLeft(short) && short.left.message).toMatch(
      new RegExp(`VIRL_CLUSTER_SECRET: the cluster secret has 6 characters; use at least ${MIN_SECRET}`)
    )
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "virl-secret-")), "secret")
    fs.writeFileSync(file, "tiny\n")
    const fromFile = Effect.runSync(Effect.either(readSecret(undefined, file)))
    expect(Either.isLeft(fromFile) && fromFile.left.message).toMatch(/VIRL_CLUSTER_SECRET_FILE .*: the cluster secret has 4 characters/)
    expect(Effect.runSync(readSecret("x".repeat(MIN_SECRET), undefined)).length).toBe(MIN_SECRET)
    expect(Effect.runSync(readSecret(undefined, undefined)).length).toBe(0)
  })

  it("knows which addresses only this machine reaches", () => {
    for (const h of ["127.0.0.1", "127.3.2.1", "localhost", "::1", "[::1]"]) expect(isLoopback(h)).toBe(true)
    for (const h of ["0.0.0.0", "10.0.0.5", "runner-2.example.org", "::"]) expect(isLoopback(h)).toBe(false)
  })
})

describe("a trial's file", () => {
  it("is a relative path inside the project: absolute paths, .. and symlinks out are refused", () => {
    expect(projectFile("experiments/frontier.ts")).toBe(path.join(PROJECT_ROOT, "experiments", "frontier.ts"))
    for (const name of ["/etc/passwd", path.join(PROJECT_ROOT, "experiments/frontier.ts"), "../outside.ts", "experiments/../../outside.ts", "", "a\0b"]) {
      expect([name, projectFile(name)]).toEqual([name, undefined])
    }
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), "virl-outside-"))
    fs.writeFileSync(path.join(outside, "evil.ts"), "export default {}")
    const link = path.join(PROJECT_ROOT, "test-output", `link-out-${process.pid}`)
    fs.mkdirSync(path.dirname(link), { recursive: true })
    fs.symlinkSync(outside, link)
    try {
      expect(projectFile(`test-output/link-out-${process.pid}/evil.ts`)).toBeUndefined()
    } finally {
      fs.rmSync(link)
    }
  })
})
