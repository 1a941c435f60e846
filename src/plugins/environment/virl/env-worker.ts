/**
 * A worker thread hosting a share of a run's V-IRL environments (see threaded.ts). It answers
 * init / reset / step / restore messages one at a time. Rewards are left to the trainer's thread
 * (a Reward layer need not be importable here): each step reports its verdict and, at an
 * episode's end, the outcome the reward's `episodeEnd` takes.
 */
import { Cause, Effect, Exit, Layer, Option, Scope } from "effect"
import { parentPort } from "node:worker_threads"
import sharp from "sharp"
import { ActionSpace, type ActionSpaceDefinition } from "../../../core/action-space.ts"
import type { EnvironmentSnapshot, Observation } from "../../../core/environment.ts"
import type { RngSnapshot } from "../../../core/random.ts"
import { type EpisodeOutcome, Reward } from "../../../core/reward.ts"
import * as VirlRoutes from "../../dataset/virl-routes.ts"
import * as PythonRandom from "../../random/python-random.ts"
import type { VirlEnvConfig } from "./config.ts"
import { type Generators, make, type VirlEnvironment } from "./layer.ts"

export type Request =
  | {
    readonly kind: "init"
    readonly config: VirlEnvConfig
    readonly dataDir: string
    readonly numEnvs: number
    /** The trainer's generator as it stands: the in-process layer seeds its wording generator from it. */
    readonly rng: RngSnapshot
    readonly actionSpace: { readonly module: string; readonly name: string }
  }
  | { readonly kind: "reset"; readonly slot: number; readonly routeIndex: number | undefined; readonly generators: Generators }
  | { readonly kind: "step"; readonly outputs: ReadonlyArray<string | null> }
  | { readonly kind: "restore"; readonly snapshot: EnvironmentSnapshot }

export type WorkerTransition = {
  readonly observation: Observation<Record<string, unknown>>
  readonly verdict: { readonly _tag: string } & Record<string, unknown>
  readonly terminated: boolean
  readonly truncated: boolean
  readonly outcome: EpisodeOutcome | null
}

export type Reply =
  | { readonly ok: true; readonly kind: "init"; readonly generators: Generators }
  | { readonly ok: true; readonly kind: "reset"; readonly observation: Observation<Record<string, unknown>>; readonly generators: Generators }
  | { readonly ok: true; readonly kind: "step"; readonly transitions: ReadonlyArray<WorkerTransition | null> }
  | { readonly ok: true; readonly kind: "restore"; readonly observations: ReadonlyArray<Observation<Record<string, unknown>> | null> }
  | { readonly ok: false; readonly slot: number; readonly message: string }

const port = parentPort!
// the threads are the parallelism: each decodes its panoramas on one libvips thread
sharp.concurrency(1)
let env: VirlEnvironment | undefined
/** The outcomes of the episodes that ended in the current step, in the order the slots were stepped. */
let outcomes: EpisodeOutcome[] = []
const scope = Effect.runSync(Scope.make())

/** Images may sit in memory shared with a pool; the trainer gets its own copy. */
const own = <O extends Observation<Record<string, unknown>> | null>(o: O): O =>
  o === null || o.image === null ? o : ({ ...o, image: { ...o.image, rgb: new Uint8Array(o.image.rgb) } } as O)

class Failed extends Error {
  constructor(
    readonly slot: number,
    message: string
  ) {
    super(message)
  }
}

/** Runs an environment call; a failure becomes a Failed naming the slot the environment named. */
const run = async <A>(effect: Effect.Effect<A, { readonly slot: number; readonly message: string }>): Promise<A> => {
  const exit = await Effect.runPromiseExit(effect)
  if (Exit.isSuccess(exit)) return exit.value
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) throw new Failed(failure.value.slot, failure.value.message)
  throw new Failed(-1, Cause.pretty(exit.cause))
}

const loadActionSpace = async (spec: { readonly module: string; readonly name: string }): Promise<ActionSpaceDefinition> => {
  const mod = (await import(spec.module)) as Record<string, unknown>
  const found = Object.values(mod).find(
    (v): v is ActionSpaceDefinition =>
      typeof v === "object" && v !== null && (v as ActionSpaceDefinition).name === spec.name && typeof (v as ActionSpaceDefinition).groundTruth === "function"
  )
  if (found === undefined) throw new Error(`${spec.module} exports no action space named ${JSON.stringify(spec.name)}`)
  return found
}

const handle = async (request: Request): Promise<Reply> => {
  switch (request.kind) {
    case "init": {
      const actionSpace = await loadActionSpace(request.actionSpace)
      const recording = {
        name: "recorded",
        step: () => 0,
        episodeEnd: (outcome: EpisodeOutcome) => {
          outcomes.push(outcome)
          return 0
        }
      }
      const layers = Layer.mergeAll(VirlRoutes.layer(request.dataDir), Layer.succeed(Reward, recording), Layer.succeed(ActionSpace, actionSpace))
      // the trainer's generator, carried here by its state (the threaded layer runs Python's generator only)
      const rng = PythonRandom.source.make(0)
      rng.restore(request.rng)
      env = (await Effect.runPromise(
        Scope.extend(make(request.config, request.numEnvs, rng, PythonRandom.source), scope).pipe(Effect.provide(layers))
      )) as VirlEnvironment
      return { ok: true, kind: "init", generators: env.generators.snapshot() }
    }
    case "reset": {
      const e = env!
      e.generators.restore(request.generators)
      const observation = await run(e.reset(request.slot, request.routeIndex === undefined ? undefined : { routeIndex: request.routeIndex }))
      return { ok: true, kind: "reset", observation: own(observation as Observation<Record<string, unknown>>), generators: e.generators.snapshot() }
    }
    case "step": {
      outcomes = []
      const stepped = await run(env!.step(request.outputs))
      // slots step in order and each ending calls episodeEnd once: the k-th outcome is the k-th ending's
      let ended = 0
      const transitions = stepped.map((t): WorkerTransition | null => {
        if (t === null) return null
        const end = t.terminated || t.truncated
        return {
          observation: own(t.observation as Observation<Record<string, unknown>>),
          verdict: { ...(t.verdict as object) } as WorkerTransition["verdict"],
          terminated: t.terminated,
          truncated: t.truncated,
          outcome: end ? (outcomes[ended++] ?? null) : null
        }
      })
      if (ended !== outcomes.length) throw new Failed(-1, `${outcomes.length} episode ends reported for ${ended} ended episodes`)
      return { ok: true, kind: "step", transitions }
    }
    case "restore": {
      const observations = await run(env!.restore(request.snapshot))
      return { ok: true, kind: "restore", observations: observations.map((o) => own(o as Observation<Record<string, unknown>> | null)) }
    }
  }
}

/** The pixel buffers of a reply (each its own copy): moved to the trainer's thread, not copied again. */
const buffers = (reply: Reply): ArrayBuffer[] => {
  const images = (o: Observation<Record<string, unknown>> | null) => (o === null || o.image === null ? [] : [o.image.rgb.buffer as ArrayBuffer])
  if (!reply.ok) return []
  switch (reply.kind) {
    case "reset":
      return images(reply.observation)
    case "step":
      return reply.transitions.flatMap((t) => (t === null ? [] : images(t.observation)))
    case "restore":
      return reply.observations.flatMap(images)
    default:
      return []
  }
}

port.on("message", (request: Request) => {
  handle(request).then(
    (reply) => port.postMessage(reply, buffers(reply)),
    (e: unknown) =>
      port.postMessage({ ok: false, slot: e instanceof Failed ? e.slot : -1, message: e instanceof Error ? e.message : String(e) } satisfies Reply)
  )
})
