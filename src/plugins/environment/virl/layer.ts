import { Effect, Layer } from "effect"
import { ActionSpace } from "../../../core/action-space.ts"
import { Dataset } from "../../../core/dataset.ts"
import {
  Environment,
  EnvironmentError,
  type EnvironmentSnapshot,
  type Observation,
  type Transition,
  type VectorEnvironment
} from "../../../core/environment.ts"
import { Random, type RandomSource, type Rng, type RngSnapshot } from "../../../core/random.ts"
import { Reward } from "../../../core/reward.ts"
import type { VirlEnvConfig } from "./config.ts"
import type { StepInfo, ViewPose } from "../../../domain/virl/episode.ts"
import { Chat } from "../../../domain/virl/chat.ts"
import { NavigationEnv } from "./navigation.ts"
import { templateFor } from "../../../domain/virl/prompt.ts"
import { StreetViewRenderer } from "../../../domain/virl/street-view.ts"
import { acquireTilePool } from "../../../domain/virl/tile-pool.ts"

/**
 * How a slot's episode came to be: the generators as its reset found them, the route asked for,
 * and every answer since. Resets draw from the generators; steps draw nothing, so replaying this
 * rebuilds the episode (rail, verify counter, history, chat) exactly.
 */
export interface Journal {
  readonly rng: RngSnapshot
  readonly wording: RngSnapshot | null
  readonly routeIndex: number | null
  readonly outputs: string[]
}

export interface Snapshot extends EnvironmentSnapshot {
  readonly kind: "virl"
  readonly rng: RngSnapshot
  readonly wording: RngSnapshot | null
  readonly slots: ReadonlyArray<Journal | null>
}

/** The generators resets draw from, as a reset would find them. */
export interface Generators {
  readonly rng: RngSnapshot
  readonly wording: RngSnapshot | null
}

/** The V-IRL environments, with their generators exposed (for environments hosted in worker threads). */
export interface VirlEnvironment extends VectorEnvironment<StepInfo> {
  readonly generators: { readonly snapshot: () => Generators; readonly restore: (g: Generators) => void }
}

/**
 * `numEnvs` V-IRL navigation environments over one dataset, drawing from the run's one
 * generator in slot order, so a seed replays the whole batch.
 */
export const make = (config: VirlEnvConfig, numEnvs: number, rng: Rng, random: RandomSource) =>
  Effect.gen(function*() {
    const dataset = yield* Dataset
    const reward = yield* Reward
    const actionSpace = yield* ActionSpace
    // the tile workers and the prefetch fibers belong to the layer's scope: released with the run
    const pool = yield* acquireTilePool
    const renderer = new StreetViewRenderer(dataset, config, undefined, pool, yield* Effect.scope)
    // the wording of varied instructions has a generator of its own, seeded from the run's
    const wording = config.instruction_variants ? random.make(BigInt(rng.snapshot().seed.replace(/[^0-9-]/g, "") || "0") * 1009n + 17n) : undefined
    const envs = Array.from({ length: numEnvs }, () => new NavigationEnv(dataset, config, rng, reward, actionSpace, wording))
    const newChat = () => new Chat(templateFor(config.language_only), actionSpace.promptText, !config.language_only)
    const chats = Array.from({ length: numEnvs }, newChat)
    const live = new Array<boolean>(numEnvs).fill(false)
    const journals = new Array<Journal | null>(numEnvs).fill(null)

    const fail = (slot: number) => (e: unknown) => new EnvironmentError({ slot, message: e instanceof Error ? e.toString() : String(e) })
    const traceOf = (slot: number, atReset: boolean) => {
      const episode = envs[slot].episode
      const where = episode.pose()
      const rail = episode.rail
      return {
        route_index: rail.routeIndex,
        rail_index: episode.railIndex,
        instruction_index: rail.waypoints[episode.railIndex]?.instructionIndex ?? null,
        geocode: where.geocode,
        heading: where.heading,
        ...(atReset ? { rail: rail.waypoints.map((w) => w.geocode), instructions: rail.instructions } : {})
      }
    }
    const observe = (slot: number, pose: ViewPose | null, info: StepInfo, atReset = false): Effect.Effect<Observation<StepInfo>, EnvironmentError> => {
      const chat = chats[slot].prepare(info)
      const trace = traceOf(slot, atReset)
      if (pose === null) return Effect.succeed({ chat, image: null, info, trace })
      const ahead = envs[slot].episode.nextPoses(2)
      return renderer.render(pose).pipe(
        Effect.tap(() => renderer.prefetch(ahead)),
        Effect.map((image) => ({ chat, image, info, trace })),
        Effect.mapError(fail(slot))
      )
    }

    const resetSlot = (slot: number, routeIndex: number | undefined) => {
      journals[slot] = { rng: rng.snapshot(), wording: wording?.snapshot() ?? null, routeIndex: routeIndex ?? null, outputs: [] }
      return envs[slot].reset(routeIndex === undefined ? undefined : { route_idx: routeIndex })
    }

    const replay = (slot: number, journal: Journal) =>
      Effect.try({
        try: () => {
          rng.restore(journal.rng)
          if (journal.wording !== null) wording?.restore(journal.wording)
          let last: { pose: ViewPose | null; info: StepInfo; ended: boolean } = { ...resetSlot(slot, journal.routeIndex ?? undefined), ended: false }
          chats[slot] = newChat()
          for (const output of journal.outputs) {
            if (last.ended) throw new Error("the snapshot steps an episode past its end")
            chats[slot].prepare(last.info)
            chats[slot].record(output)
            journals[slot]!.outputs.push(output)
            const s = envs[slot].step(output)
            last = { pose: s.pose, info: s.info, ended: s.terminated || s.truncated }
          }
          live[slot] = !last.ended
          return last
        },
        catch: fail(slot)
      })

    const environment: VirlEnvironment = {
      numEnvs,
      generators: {
        snapshot: () => ({ rng: rng.snapshot(), wording: wording?.snapshot() ?? null }),
        restore: (g) => {
          rng.restore(g.rng)
          if (g.wording !== null) wording?.restore(g.wording)
        }
      },
      snapshot: (): Snapshot => ({
        kind: "virl",
        rng: rng.snapshot(),
        wording: wording?.snapshot() ?? null,
        slots: journals.map((j) => (j === null ? null : { ...j, outputs: [...j.outputs] }))
      }),
      restore: (snapshot) =>
        Effect.gen(function*() {
          const s = snapshot as Snapshot
          if (s.kind !== "virl" || !Array.isArray(s.slots) || s.slots.length !== numEnvs) {
            return yield* new EnvironmentError({ slot: -1, message: `cannot restore: the snapshot is not of ${numEnvs} V-IRL environments` })
          }
          const observations: Array<Observation<StepInfo> | null> = []
          for (let slot = 0; slot < numEnvs; slot++) {
            const journal = s.slots[slot]
            if (journal === null) {
              live[slot] = false
              journals[slot] = null
              observations.push(null)
              continue
            }
            const last = yield* replay(slot, journal)
            observations.push(last.ended ? null : yield* observe(slot, last.pose, last.info, journal.outputs.length === 0))
          }
          yield* Effect.try({
            try: () => {
              rng.restore(s.rng)
              if (s.wording !== null) wording?.restore(s.wording)
            },
            catch: fail(-1)
          })
          return observations
        }),
      reset: (slot, request) =>
        Effect.try({
          try: () => resetSlot(slot, request?.routeIndex),
          catch: fail(slot)
        }).pipe(
          Effect.tap(() =>
            Effect.sync(() => {
              live[slot] = true
              chats[slot] = newChat()
            })
          ),
          Effect.flatMap((r) => observe(slot, r.pose, r.info, true))
        ),
      step: (outputs) =>
        Effect.forEach(outputs, (output, slot): Effect.Effect<Transition<StepInfo> | null, EnvironmentError> => {
          if (output === null || !live[slot]) return Effect.succeed(null)
          chats[slot].record(output)
          journals[slot]?.outputs.push(output)
          return Effect.try({ try: () => envs[slot].step(output), catch: fail(slot) }).pipe(
            Effect.tap((s) => Effect.sync(() => (live[slot] = !(s.terminated || s.truncated)))),
            Effect.flatMap((s) =>
              observe(slot, s.pose, s.info).pipe(
                Effect.map((observation) => ({
                  observation,
                  reward: s.reward,
                  terminated: s.terminated,
                  truncated: s.truncated,
                  verdict: s.verdict
                }))
              )
            )
          )
        })
    }
    return environment
  })

/** `numEnvs` environments drawing from one generator that the run's Random layer makes from `seed`. */
export const layer = (config: VirlEnvConfig, numEnvs: number, seed: number | bigint) =>
  Layer.scoped(Environment, Effect.flatMap(Random, (random) => make(config, numEnvs, random.make(seed), random)))
