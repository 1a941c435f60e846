import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { acceptHandshake, connectAuthenticated, isLoopback } from "../../../src/plugins/sharding/transport.ts"

const SECRET = Buffer.from("correct horse battery staple")
const refusals: string[] = []
let port = 0
/** A runner's side in miniature: the handshake, then an echo. */
const server = net.createServer((conn) => {
  conn.pause()
  conn.on("error", () => undefined)
  acceptHandshake(conn, SECRET).then(
    () => {
      conn.resume()
      conn.pipe(conn)
    },
    (e: Error) => {
      refusals.push(e.message)
      conn.destroy()
    }
  )
})
beforeAll(() => new Promise<void>((r) => server.listen(0, "127.0.0.1", () => ((port = (server.address() as net.AddressInfo).port), r()))))
afterAll(() => server.close())

const echo = (socket: net.Socket, text: string) =>
  new Promise<string>((resolve) => {
    socket.resume()
    socket.once("data", (d) => resolve(String(d)))
    socket.write(text)
  })

describe("the cluster's handshake", () => {
  it("lets a peer holding the secret through, and its bytes after it reach the other side intact", async () => {
    const socket = await connectAuthenticated("127.0.0.1", port, SECRET)
    expect(await echo(socket, "hello")).toBe("hello")
    socket.destroy()
  })

  it("refuses a peer with another secret on both sides, and the server goes on", async () => {
    const before = refusals.length
    await expect(connectAuthenticated("127.0.0.1", port, Buffer.from("guess"))).rejects.toThrow(/refused this process: the cluster secrets differ/)
    expect(refusals.slice(before)).toEqual(["it does not hold the cluster secret (VIRL_CLUSTER_SECRET)"])
    const socket = await connectAuthenticated("127.0.0.1", port, SECRET)
    expect(await echo(socket, "still here")).toBe("still here")
    socket.destroy()
  })

  it("refuses a recorded answer replayed on a new connection (each side's nonce is fresh)", async () => {
    // record what a legitimate client sends after the challenge
    const recorded = await new Promise<Buffer>((resolve) => {
      const spy = net.createServer((conn) => {
        conn.write(Buffer.concat([Buffer.from("VIRL-CLUSTER/1\n"), Buffer.alloc(32, 7)]))
        conn.once("data", (d) => {
          resolve(d)
          conn.destroy()
        })
      })
      spy.listen(0, "127.0.0.1", () => {
        connectAuthenticated("127.0.0.1", (spy.address() as net.AddressInfo).port, SECRET).catch(() => spy.close())
      })
    })
    expect(recorded.length).toBe(64)
    const before = refusals.length
    const replay = net.createConnection({ host: "127.0.0.1", port })
    replay.on("data", () => replay.write(recorded))
    await new Promise((r) => replay.on("close", r))
    expect(refusals.slice(before)).toEqual(["it does not hold the cluster secret (VIRL_CLUSTER_SECRET)"])
  })

  it("knows which addresses only this machine reaches", () => {
    for (const h of ["127.0.0.1", "127.3.2.1", "localhost", "::1", "[::1]"]) expect(isLoopback(h)).toBe(true)
    for (const h of ["0.0.0.0", "10.0.0.5", "runner-2.example.org", "::"]) expect(isLoopback(h)).toBe(false)
  })
})
