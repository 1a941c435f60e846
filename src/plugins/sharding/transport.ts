import * as RunnerHealth from "@effect/cluster/RunnerHealth"
import * as Runners from "@effect/cluster/Runners"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as SocketRunner from "@effect/cluster/SocketRunner"
import * as SqlMessageStorage from "@effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "@effect/cluster/SqlRunnerStorage"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as SocketServer from "@effect/platform/SocketServer"
import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import { Socket, SocketGenericError } from "@effect/platform/Socket"
import { Data, Duration, Effect, Exit, FiberSet, Layer, Schedule, Scope } from "effect"
import * as fs from "node:fs"
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import * as net from "node:net"

/**
 * The cluster's transport with authentication: every TCP connection between runners, and from a
 * submitter to a runner, opens with a challenge–response on a shared secret before a single
 * cluster message is read. Each side sends a random 32-byte nonce and proves, with
 * HMAC-SHA256(secret, role ‖ both nonces), that it holds the secret; the secret itself never
 * crosses the wire, and a recorded handshake cannot be replayed (fresh nonces). A connection
 * that fails the handshake — or sends nothing for 5 s — is closed and logged; the runner goes
 * on. The threat model: anyone who can reach a runner's port on the network. The secret keeps
 * them from sending the cluster's messages (submitting jobs, claiming shards); it does not
 * encrypt the traffic: on a network you do not trust, run the cluster over a VPN or an SSH tunnel.
 *
 * Without a secret the handshake still runs with an empty key, so a runner and a submitter that
 * disagree on whether there is one get a clear refusal instead of garbled messages.
 */
const MAGIC = Buffer.from("VIRL-CLUSTER/1\n", "ascii")
const NONCE = 32
const PROOF = 32
const HANDSHAKE_MS = 5000

const proof = (secret: Buffer, role: "client" | "server", a: Buffer, b: Buffer): Buffer =>
  createHmac("sha256", secret).update(role).update(a).update(b).digest()

/** Reads exactly `n` bytes from a socket in paused mode (nothing beyond them is consumed). */
const readExactly = (socket: net.Socket, n: number): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const tryRead = () => {
      const chunk = socket.read(n) as Buffer | null
      if (chunk !== null) {
        cleanup()
        resolve(chunk)
      }
    }
    const onEnd = () => {
      cleanup()
      reject(new Error("the other side closed the connection"))
    }
    const onError = (e: Error) => {
      cleanup()
      reject(e)
    }
    const cleanup = () => {
      socket.off("readable", tryRead)
      socket.off("end", onEnd)
      socket.off("close", onEnd)
      socket.off("error", onError)
    }
    socket.on("readable", tryRead)
    socket.on("end", onEnd)
    socket.on("close", onEnd)
    socket.on("error", onError)
    tryRead()
  })

const withTimeout = <A>(p: Promise<A>, ms: number, what: string): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
    })
  ]).finally(() => clearTimeout(timer))
}

/** The server's half: challenge, check the client's proof, prove itself. Rejects with why. */
export const acceptHandshake = async (socket: net.Socket, secret: Buffer): Promise<void> => {
  const serverNonce = randomBytes(NONCE)
  socket.write(Buffer.concat([MAGIC, serverNonce]))
  const answer = await withTimeout(readExactly(socket, NONCE + PROOF), HANDSHAKE_MS, "handshake")
  const clientNonce = answer.subarray(0, NONCE)
  const expected = proof(secret, "client", serverNonce, clientNonce)
  if (!timingSafeEqual(answer.subarray(NONCE), expected)) throw new Error("it does not hold the cluster secret (VIRL_CLUSTER_SECRET)")
  socket.write(proof(secret, "server", clientNonce, serverNonce))
}

/** The client's half: answer the challenge, then check that the server holds the secret too. */
export const offerHandshake = async (socket: net.Socket, secret: Buffer, address: string): Promise<void> => {
  const hello = await withTimeout(readExactly(socket, MAGIC.length + NONCE), HANDSHAKE_MS, `runner ${address}`)
  if (!hello.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error(`runner ${address} does not speak virl's cluster protocol (another virl version?)`)
  const serverNonce = hello.subarray(MAGIC.length)
  const clientNonce = randomBytes(NONCE)
  socket.write(Buffer.concat([clientNonce, proof(secret, "client", serverNonce, clientNonce)]))
  const reply = await withTimeout(readExactly(socket, PROOF), HANDSHAKE_MS, `runner ${address}`).catch(() => {
    throw new Error(`runner ${address} refused this process: the cluster secrets differ (VIRL_CLUSTER_SECRET)`)
  })
  if (!timingSafeEqual(reply, proof(secret, "server", clientNonce, serverNonce))) {
    throw new Error(`runner ${address} could not prove it holds the cluster secret`)
  }
}

/** A connection to `host:port` that has passed the handshake, as a raw socket. */
export const connectAuthenticated = (host: string, port: number, secret: Buffer): Promise<net.Socket> =>
  new Promise((resolve, reject) => {
    const socket = net.createConnection({ host, port })
    socket.pause()
    socket.once("error", reject)
    socket.once("connect", () => {
      offerHandshake(socket, secret, `${host}:${port}`).then(
        () => {
          socket.off("error", reject)
          resolve(socket)
        },
        (e) => {
          socket.destroy()
          reject(e)
        }
      )
    })
  })

/** The RPC protocol runners and submitters open to a runner: the handshake, then @effect/rpc over the socket. */
const clientProtocol = (secret: Buffer) =>
  Layer.effect(
    Runners.RpcClientProtocol,
    Effect.gen(function*() {
      const serialization = yield* RpcSerialization.RpcSerialization
      return (address: { readonly host: string; readonly port: number }) =>
        Effect.gen(function*() {
          const socket = yield* NodeSocket.fromDuplex(
            Effect.acquireRelease(
              Effect.tryPromise({
                try: () => connectAuthenticated(address.host, address.port, secret),
                catch: (cause) => new SocketGenericError({ reason: "Open", cause })
              }),
              (s) => Effect.sync(() => s.destroy())
            )
          )
          return yield* RpcClient.makeProtocolSocket().pipe(
            Effect.provideService(Socket, socket),
            Effect.provideService(RpcSerialization.RpcSerialization, serialization)
          )
        }).pipe(Effect.orDie)
    })
  )

/** A socket server whose connections reach the cluster only after the handshake; refusals are logged. */
const socketServer = (secret: Buffer, log: (line: string) => void) =>
  Layer.scoped(
    SocketServer.SocketServer,
    Effect.gen(function*() {
      const config = yield* ShardingConfig.ShardingConfig
      const listen = config.runnerListenAddress._tag === "Some"
        ? config.runnerListenAddress.value
        : config.runnerAddress._tag === "Some"
        ? config.runnerAddress.value
        : undefined
      if (listen === undefined) return yield* Effect.dieMessage("the runner has no address to listen on")
      const accepted: net.Socket[] = []
      let deliver: ((socket: net.Socket) => void) | undefined
      const server = net.createServer((conn) => {
        conn.pause()
        conn.on("error", () => undefined)
        acceptHandshake(conn, secret).then(
          () => (deliver === undefined ? accepted.push(conn) : deliver(conn)),
          (e: Error) => {
            log(`refused a connection from ${conn.remoteAddress}:${conn.remotePort}: ${e.message}`)
            conn.destroy()
          }
        )
      })
      yield* Effect.async<void, SocketServer.SocketServerError>((resume) => {
        server.once("error", (cause) => resume(Effect.fail(new SocketServer.SocketServerError({ reason: "Open", cause }))))
        server.listen(listen.port, listen.host, () => resume(Effect.void))
      })
      yield* Effect.addFinalizer(() => Effect.async<void>((resume) => void server.close(() => resume(Effect.void))))
      const bound = server.address() as net.AddressInfo
      const run = <R, E, _>(handler: (socket: Socket) => Effect.Effect<_, E, R>) =>
        Effect.gen(function*() {
          const scope = yield* Scope.make()
          const fibers = yield* FiberSet.make().pipe(Scope.extend(scope))
          const fork = yield* FiberSet.runtime(fibers)<R>()
          const serve = (conn: net.Socket) =>
            fork(
              NodeSocket.fromDuplex(Effect.acquireRelease(Effect.succeed(conn), (c) => Effect.sync(() => c.destroySoon()))).pipe(
                Effect.flatMap(handler),
                Effect.catchAllCause(() => Effect.void)
              )
            )
          return yield* Effect.async<never>(() => {
            deliver = serve
            accepted.splice(0).forEach(serve)
            return Effect.suspend(() => {
              deliver = undefined
              return Scope.close(scope, Exit.void)
            })
          })
        })
      return SocketServer.SocketServer.of({ address: { _tag: "TcpAddress", hostname: bound.address, port: bound.port }, run })
    })
  )

export interface TransportOptions {
  readonly clientOnly: boolean
  readonly shardingConfig: Partial<ShardingConfig.ShardingConfig["Type"]>
  /** The shared secret; empty: none (allowed on loopback, or with --insecure). */
  readonly secret: Buffer
  readonly log: (line: string) => void
}

/**
 * What @effect/platform-node's NodeClusterSocket.layer builds (SQL storage, MessagePack), with
 * the authenticated socket server and client protocol above in place of its plain ones.
 */
export const layer = (options: TransportOptions) => {
  const protocol = clientProtocol(options.secret)
  const storage = <A, E, R>(sockets: Layer.Layer<A, E, R>) =>
    sockets.pipe(
      Layer.provideMerge(Layer.orDie(SqlMessageStorage.layer)),
      Layer.provide(Layer.orDie(SqlRunnerStorage.layer)),
      Layer.provide(ShardingConfig.layerFromEnv(options.shardingConfig)),
      Layer.provide(RpcSerialization.layerMsgPack)
    )
  if (options.clientOnly) return storage(Layer.provide(SocketRunner.layerClientOnly, protocol))
  const health = pingWithin(options.shardingConfig.shardLockExpiration ?? Duration.seconds(30)).pipe(Layer.provide(Runners.layerRpc), Layer.provide(protocol))
  return storage(Layer.provide(SocketRunner.layer, [socketServer(options.secret, options.log), protocol]).pipe(Layer.provide(health)))
}

/**
 * Whether a runner answers, within the failover time. @effect/cluster's own check waits 10 s a
 * ping, six pings: a runner stopped (SIGSTOP, a frozen VM) still has its port accepting
 * connections — the kernel does that — so its pings hang instead of failing, and for about a
 * minute, whatever --failover said, nobody called it unhealthy. Here a ping waits a third of the
 * failover time, three pings.
 */
const pingWithin = (failover: Duration.DurationInput) =>
  Layer.effect(
    RunnerHealth.RunnerHealth,
    Effect.map(Runners.Runners, (runners) => {
      const each = Duration.millis(Math.max(1000, Duration.toMillis(failover) / 3))
      return RunnerHealth.RunnerHealth.of({
        isAlive: (address) =>
          runners.ping(address).pipe(Effect.timeout(each), Effect.retry({ times: 2, schedule: Schedule.spaced("250 millis") }), Effect.isSuccess)
      })
    })
  )

/** Whether a runner bound to `host` can be reached only from this machine. */
export const isLoopback = (host: string): boolean => {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "")
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h)
}

export class SecretError extends Data.TaggedError("SecretError")<{ readonly message: string }> {
  override toString(): string {
    return this.message
  }
}

/** The secret from VIRL_CLUSTER_SECRET, or the file VIRL_CLUSTER_SECRET_FILE names (trimmed); empty when neither is set. */
export const readSecret = (text: string | undefined, file: string | undefined): Effect.Effect<Buffer, SecretError> =>
  text !== undefined
    ? Effect.succeed(Buffer.from(text, "utf8"))
    : file === undefined
    ? Effect.succeed(Buffer.alloc(0))
    : Effect.try({
      try: () => {
        const secret = fs.readFileSync(file, "utf8").trim()
        if (secret === "") throw new Error("the file is empty")
        return Buffer.from(secret, "utf8")
      },
      catch: (e) => new SecretError({ message: `VIRL_CLUSTER_SECRET_FILE ${file}: ${(e as Error).message}` })
    })
