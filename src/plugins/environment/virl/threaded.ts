import { Effect, Layer } from "effect"
import { Worker } from "node:worker_threads"
import { ActionSpace } from "../../../core/action-space.ts"
import { Environment, EnvironmentError, type Observation, type Transition, type VectorEnvironment } from "../../../core/environment.ts"
import { Random } from "../../../core/random.ts"
import * as PythonRandom from "../../random/python-random.ts"
import { Reward, Verdict } from "../../../core/reward.ts"
import type { VirlEnvConfig } from "./config.ts"
import type { Reply, Request, WorkerTransition } from "./env-worker.ts"
import type { Generators, Journal, Snapshot } from "./layer.ts"

type Info = Record<string, unknown>

/** One worker thread and its share of the slots: [first, first + count). */
interface Part {
  readonly worker: Worker
  readonly first: number
  readonly count: number
  /** Requests answered in order: the worker handles one message at a time. */
  readonly waiting: Array<{ resolve: (r: Reply) => void; reject: (e: Error) => void }>
}

const ask = (part: Part, request: Request): Effect.Effect<Reply, EnvironmentError> =>
  Effect.async<Reply, EnvironmentError>((resume) => {
    part.waiting.push({
      resolve: (reply) =>
        resume(
          reply.ok
            ? Effect.succeed(reply)
            : Effect.fail(new EnvironmentError({ slot: reply.slot < 0 ? reply.slot : part.first + reply.slot, message: reply.message }))
        ),
      reject: (e) => resume(Effect.fail(new EnvironmentError({ slot: -1, message: `environment worker: ${e.message}` })))
    })
    part.worker.postMessage(request)
  })

type Answer = Extract<Reply, { ok: true }>
const expect = <K extends Answer["kind"]>(_kind: K) => (reply: Reply) => reply as Extract<Answer, { kind: K }>

/**
 * `numEnvs` V-IRL environments split over `workers` threads, behaving as the in-process layer does
 * draw for draw: resets draw from this thread's generator, handed to the slot's worker and taken
 * back (resets happen in the caller's order, as in process); steps run in every worker at once;
 * rewards are computed here from each step's verdict and outcome by the run's Reward layer. The
 * snapshot is the in-process layer's, so checkpoints move between the two.
 */
export const make = (config: VirlEnvConfig, dataDir: string, numEnvs: number, workers: number, seed: number | bigint) =>
  Effect.gen(function*() {
    const random = yield* Random
    // a generator crosses into the threads as its state, which only Python's generator is read back from there
    if (random.name !== PythonRandom.source.name) {
      return yield* new EnvironmentError({
        slot: -1,
        message:
          `the workers sharding carries the environments' generator into its threads as Python's (${PythonRandom.source.name}); the Random layer "${random.name}" runs with local sharding`
      })
    }
    const rng = random.make(seed)
    const reward = yield* Reward
    const actionSpace = yield* ActionSpace
    if (actionSpace.module === undefined) {
      return yield* new EnvironmentError({
        slot: -1,
        message:
          `the workers sharding imports the action space in its threads, and "${actionSpace.name}" does not say from where: give its definition \`module: import.meta.url\` (as src/plugins/action-space/clock.ts does)`
      })
    }
    const n = Math.max(1, Math.min(workers, numEnvs))
    const sizes = Array.from({ length: n }, (_, k) => Math.floor(numEnvs / n) + (k < numEnvs % n ? 1 : 0))
    const parts = yield* Effect.acquireRelease(
      Effect.sync(() => {
        let first = 0
        return sizes.map((count): Part => {
          const worker = new Worker(new URL("./env-worker.mjs", import.meta.url))
          const part: Part = { worker, first, count, waiting: [] }
          first += count
          worker.on("message", (reply: Reply) => part.waiting.shift()?.resolve(reply))
          worker.on("error", (e) => {
            for (const w of part.waiting.splice(0)) w.reject(e)
          })
          worker.on("exit", (code) => {
            for (const w of part.waiting.splice(0)) w.reject(new Error(`exited with code ${code}`))
          })
          return part
        })
      }),
      (ps) => Effect.promise(() => Promise.all(ps.map((p) => p.worker.terminate())))
    )
    const start = rng.snapshot()
    const inits = yield* Effect.forEach(
      parts,
      (part) =>
        ask(part, { kind: "init", config, dataDir, numEnvs: part.count, rng: start, actionSpace: { module: actionSpace.module!, name: actionSpace.name } })
          .pipe(
            Effect.map(expect("init"))
          ),
      { concurrency: "unbounded" }
    )
    // the wording generator starts as the in-process layer's does (seeded from the run's seed)
    let wording = inits[0]!.generators.wording
    const journals = new Array<Journal | null>(numEnvs).fill(null)
    const live = new Array<boolean>(numEnvs).fill(false)
    const partOf = (slot: number) => parts.find((p) => slot >= p.first && slot < p.first + p.count)!

    const toTransition = (t: WorkerTransition): Transition<Info> => {
      const { _tag, ...fields } = t.verdict
      const verdict = (Verdict as unknown as Record<string, (f: object) => Verdict>)[_tag]!(fields)
      const r = reward.step(verdict) + (t.outcome === null ? 0 : reward.episodeEnd(t.outcome))
      return { observation: t.observation, reward: r, terminated: t.terminated, truncated: t.truncated, verdict }
    }

    const environment: VectorEnvironment<Info> = {
      numEnvs,
      snapshot: (): Snapshot => ({
        kind: "virl",
        rng: rng.snapshot(),
        wording,
        slots: journals.map((j) => (j === null ? null : { ...j, outputs: [...j.outputs] }))
      }),
      restore: (snapshot) =>
        Effect.gen(function*() {
          const s = snapshot as Snapshot
          if (s.kind !== "virl" || !Array.isArray(s.slots) || s.slots.length !== numEnvs) {
            return yield* new EnvironmentError({ slot: -1, message: `cannot restore: the snapshot is not of ${numEnvs} V-IRL environments` })
          }
          const replies = yield* Effect.forEach(
            parts,
            (part) =>
              ask(part, { kind: "restore", snapshot: { ...s, slots: s.slots.slice(part.first, part.first + part.count) } }).pipe(Effect.map(expect("restore"))),
            { concurrency: "unbounded" }
          )
          rng.restore(s.rng)
          wording = s.wording
          s.slots.forEach((j, slot) => (journals[slot] = j === null ? null : { ...j, outputs: [...j.outputs] }))
          const observations = replies.flatMap((r) => r.observations)
          observations.forEach((o, slot) => (live[slot] = o !== null))
          return observations
        }),
      reset: (slot, request) =>
        Effect.gen(function*() {
          const part = partOf(slot)
          const before: Generators = { rng: rng.snapshot(), wording }
          const reply = expect("reset")(yield* ask(part, { kind: "reset", slot: slot - part.first, routeIndex: request?.routeIndex, generators: before }))
          rng.restore(reply.generators.rng)
          wording = reply.generators.wording
          journals[slot] = { rng: before.rng, wording: before.wording, routeIndex: request?.routeIndex ?? null, outputs: [] }
          live[slot] = true
          return reply.observation as Observation<Info>
        }),
      step: (outputs) =>
        Effect.gen(function*() {
          const replies = yield* Effect.forEach(
            parts,
            (part) => {
              const mine = outputs.slice(part.first, part.first + part.count).map((o, k) => (live[part.first + k] ? (o ?? null) : null))
              return mine.every((o) => o === null)
                ? Effect.succeed(mine.map(() => null))
                : ask(part, { kind: "step", outputs: mine }).pipe(Effect.map((r) => expect("step")(r).transitions))
            },
            { concurrency: "unbounded" }
          )
          const all = replies.flat()
          return all.map((t, slot): Transition<Info> | null => {
            if (t === null) return null
            journals[slot]?.outputs.push(outputs[slot]!)
            if (t.terminated || t.truncated) live[slot] = false
            return toTransition(t)
          })
        })
    }
    return environment
  })

export const layer = (config: VirlEnvConfig, dataDir: string, numEnvs: number, workers: number, seed: number | bigint) =>
  Layer.scoped(Environment, make(config, dataDir, numEnvs, workers, seed))
