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
import { hkdfSync } from "node:crypto"
import * as net from "node:net"
import * as tls from "node:tls"

/**
 * The cluster's transport: every TCP connection between runners, and from a submitter to a
 * runner, is TLS 1.2 with a pre-shared key (PSK-AES256-GCM-SHA384) derived from the cluster's
 * secret. Both sides prove they hold the key in TLS's own handshake (fresh randoms each side: a
 * recorded session cannot be replayed), and afterwards every record is encrypted and carries a
 * MAC, so a message changed on the way is detected and the connection dropped. The secret never
 * crosses the wire. A connection that fails the handshake — or sends nothing for 5 s — is closed
 * and logged; the runner goes on. The threat model: anyone who can reach a runner's port, on the
 * network or (on a shared machine) locally.
 *
 * Without a secret (`--insecure`) the key is derived from the empty secret: anyone can compute it,
 * so the channel checks nothing, but a runner and a submitter that disagree on whether there is a
 * secret get a clear refusal instead of garbled messages.
 */
const TLS_OPTIONS = { ciphers: "PSK-AES256-GCM-SHA384", minVersion: "TLSv1.2", maxVersion: "TLSv1.2" } as const
const IDENTITY = "virl-cluster/2"
const HANDSHAKE_MS = 5000

/** Characters a cluster secret must have at least (`openssl rand -hex 32` makes 64). */
export const MIN_SECRET = 32

/** The TLS key of a secret (HKDF-SHA256): the secret itself is never used as a key, nor sent. */
export const pskOf = (secret: Buffer): Buffer => Buffer.from(hkdfSync("sha256", secret, IDENTITY, "tls-psk", 32))

/** What a failed TLS handshake means for the cluster, in words. */
const refusal = (e: Error & { code?: string }): string =>
  /BAD_RECORD_MAC|DECRYPT|DECRYPTION_FAILED|CIPHER_OPERATION_FAILED|PSK_IDENTITY|UNKNOWN_PSK/i.test(`${e.code ?? ""} ${e.message}`)
    ? "it does not hold the cluster secret (VIRL_CLUSTER_SECRET)"
    : /WRONG_VERSION_NUMBER|UNKNOWN_PROTOCOL|HTTP_REQUEST|RECORD_LAYER|PACKET_LENGTH|UNEXPECTED_MESSAGE/i.test(`${e.code ?? ""} ${e.message}`)
    ? `it does not speak the cluster's protocol (${e.code ?? e.message})`
    : e.message

/**
 * A TLS server whose connections have passed the handshake (a runner's side). Refusals go to
 * `log`; `onSecure` gets each connection, its data held until a reader attaches.
 */
export const authenticatedServer = (secret: Buffer, onSecure: (socket: tls.TLSSocket) => void, log: (line: string) => void): tls.Server => {
  const psk = pskOf(secret)
  const server = tls.createServer({
    ...TLS_OPTIONS,
    handshakeTimeout: HANDSHAKE_MS,
    pskIdentityHint: IDENTITY,
    pskCallback: (_socket, identity) => (identity === IDENTITY ? psk : null)
  }, (socket) => {
    // not paused: a stream paused by hand stays paused when its reader attaches ("data"), and
    // NodeSocket.fromDuplex attaches one; with no reader yet, what arrives waits in its buffer
    // a record that fails its MAC (changed on the way) is an error here: the connection goes
    socket.on("error", (e) => {
      log(`dropped a connection from ${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}: ${e.message.split("\n")[0]}`)
      socket.destroy()
    })
    onSecure(socket)
  })
  server.on("tlsClientError", (e: Error & { code?: string }, socket: tls.TLSSocket) => {
    log(`refused a connection from ${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}: ${refusal(e)}`)
    socket.destroy()
  })
  return server
}

/** A connection to `host:port` that has passed the handshake, its data held until a reader attaches. */
export const connectAuthenticated = (host: string, port: number, secret: Buffer): Promise<tls.TLSSocket> =>
  new Promise((resolve, reject) => {
    const address = `${host}:${port}`
    const socket = tls.connect({
      host,
      port,
      ...TLS_OPTIONS,
      // the peer is identified by the key, not by a certificate
      checkServerIdentity: () => undefined,
      pskCallback: () => ({ psk: pskOf(secret), identity: IDENTITY })
    })
    const timer = setTimeout(() => socket.destroy(new Error(`runner ${address}: no answer within ${HANDSHAKE_MS} ms`)), HANDSHAKE_MS)
    socket.once("error", (e: Error & { code?: string }) => {
      clearTimeout(timer)
      const why = refusal(e)
      reject(
        new Error(
          why.startsWith("it does not hold")
            ? `runner ${address} refused this process: the cluster secrets differ (VIRL_CLUSTER_SECRET)`
            : `runner ${address}: ${why}`
        )
      )
    })
    socket.once("secureConnect", () => {
      clearTimeout(timer)
      socket.removeAllListeners("error")
      socket.on("error", () => socket.destroy())
      resolve(socket)
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
      const accepted: tls.TLSSocket[] = []
      let deliver: ((socket: tls.TLSSocket) => void) | undefined
      const server = authenticatedServer(secret, (conn) => (deliver === undefined ? accepted.push(conn) : deliver(conn)), log)
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
          const serve = (conn: tls.TLSSocket) =>
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
  /** The shared secret; empty: none (a runner starts without one only with --insecure). */
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

/**
 * The secret from VIRL_CLUSTER_SECRET, or the file VIRL_CLUSTER_SECRET_FILE names (trimmed); empty
 * when neither is set. A secret shorter than MIN_SECRET characters is refused: it could be guessed.
 */
export const readSecret = (text: string | undefined, file: string | undefined): Effect.Effect<Buffer, SecretError> => {
  const checked = (source: string, secret: string) =>
    [...secret].length >= MIN_SECRET
      ? Effect.succeed(Buffer.from(secret, "utf8"))
      : Effect.fail(
        new SecretError({
          message: `${source}: the cluster secret has ${[...secret].length} characters; use at least ${MIN_SECRET} (\`openssl rand -hex 32\` makes one)`
        })
      )
  if (text !== undefined) return checked("VIRL_CLUSTER_SECRET", text)
  if (file === undefined) return Effect.succeed(Buffer.alloc(0))
  return Effect.flatMap(
    Effect.try({
      try: () => {
        const secret = fs.readFileSync(file, "utf8").trim()
        if (secret === "") throw new Error("the file is empty")
        return secret
      },
      catch: (e) => new SecretError({ message: `VIRL_CLUSTER_SECRET_FILE ${file}: ${(e as Error).message}` })
    }),
    (secret) => checked(`VIRL_CLUSTER_SECRET_FILE ${file}`, secret)
  )
}
