import { Effect, Layer } from "effect"
import { ActionSpace } from "../../../core/action-space.ts"
import { Dataset } from "../../../core/dataset.ts"
import { Environment, EnvironmentError, type Observation, type Transition, type VectorEnvironment } from "../../../core/environment.ts"
import { Random } from "../../../core/random.ts"
import { PythonRandom } from "../../random/python-random.ts"
import { Reward } from "../../../core/reward.ts"
import type { VirlEnvConfig } from "./config.ts"
import type { StepInfo, ViewPose } from "./episode.ts"
import { Chat } from "./chat.ts"
import { NavigationEnv } from "./navigation.ts"
import { templateFor } from "./prompt.ts"
import { StreetViewRenderer } from "./street-view.ts"

/**
 * `numEnvs` V-IRL navigation environments over one dataset, drawing from the run's one
 * generator in slot order, so a seed replays the whole batch.
 */
export const make = (config: VirlEnvConfig, numEnvs: number) =>
  Effect.gen(function* () {
    const dataset = yield* Dataset
    const rng = yield* Random
    const reward = yield* Reward
    const actionSpace = yield* ActionSpace
    const renderer = new StreetViewRenderer(dataset, config)
    // the wording of varied instructions has a generator of its own, seeded from the run's
    const wording = config.instruction_variants ? new PythonRandom(BigInt(rng.snapshot().seed.replace(/[^0-9-]/g, "") || "0") * 1009n + 17n) : undefined
    const envs = Array.from({ length: numEnvs }, () => new NavigationEnv(dataset, config, rng, reward, actionSpace, wording))
    const newChat = () => new Chat(templateFor(config.language_only), actionSpace.promptText, !config.language_only)
    const chats = Array.from({ length: numEnvs }, newChat)
    const live = new Array<boolean>(numEnvs).fill(false)

    const fail = (slot: number) => (e: unknown) =>
      new EnvironmentError({ slot, message: e instanceof Error ? e.toString() : String(e) })
    const observe = (slot: number, pose: ViewPose | null, info: StepInfo): Effect.Effect<Observation<StepInfo>, EnvironmentError> => {
      const chat = chats[slot].prepare(info)
      if (pose === null) return Effect.succeed({ chat, image: null, info })
      const ahead = envs[slot].episode.nextPoses(2)
      return renderer.render(pose).pipe(
        Effect.tap(() => renderer.prefetch(ahead)),
        Effect.map((image) => ({ chat, image, info })),
        Effect.mapError(fail(slot))
      )
    }

    const environment: VectorEnvironment<StepInfo> = {
      numEnvs,
      reset: (slot, request) =>
        Effect.try({
          try: () => envs[slot].reset(request?.routeIndex === undefined ? undefined : { route_idx: request.routeIndex }),
          catch: fail(slot)
        }).pipe(
          Effect.tap(() =>
            Effect.sync(() => {
              live[slot] = true
              chats[slot] = newChat()
            })
          ),
          Effect.flatMap((r) => observe(slot, r.pose, r.info))
        ),
      step: (outputs) =>
        Effect.forEach(outputs, (output, slot): Effect.Effect<Transition<StepInfo> | null, EnvironmentError> => {
          if (output === null || !live[slot]) return Effect.succeed(null)
          chats[slot].record(output)
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

export const layer = (config: VirlEnvConfig, numEnvs = 1) => Layer.effect(Environment, make(config, numEnvs))
