import { it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { describe, expect } from "vitest"
import { Environment } from "../../../../src/core/environment.ts"
import * as Absolute from "../../../../src/plugins/action-space/absolute.ts"
import * as Dataset from "../../../../src/plugins/dataset/virl-routes.ts"
import { defaultConfig } from "../../../../src/plugins/environment/virl/config.ts"
import * as Virl from "../../../../src/plugins/environment/virl/layer.ts"
import * as PythonRandom from "../../../../src/plugins/random/python-random.ts"
import * as Process from "../../../../src/plugins/reward/process.ts"
import { FIXTURE_DATASET } from "../../../support/fixtures.ts"

const envLayer = (numEnvs: number, languageOnly: boolean) =>
  Virl.layer(defaultConfig({ resolution: 32, language_only: languageOnly }), numEnvs, 12).pipe(
    Layer.provide(Layer.mergeAll(Dataset.layer(FIXTURE_DATASET), Absolute.layer, Process.layer, PythonRandom.layer))
  )

const oracleAnswer = (info: unknown) => JSON.stringify({ action: (info as { gt_action: string }).gt_action })

describe("the V-IRL Environment layer", () => {
  it.effect("steps several episodes in lock-step to success with ground-truth answers", () =>
    Effect.gen(function*() {
      const env = yield* Environment
      const infos = yield* Effect.forEach([0, 1, 2], (slot) => env.reset(slot, { routeIndex: slot }).pipe(Effect.map((o) => o.info)))
      const rewards = [0, 0, 0]
      const done = [false, false, false]
      let answers: Array<string | null> = infos.map(oracleAnswer)
      while (done.some((d) => !d)) {
        const transitions = yield* env.step(answers)
        answers = transitions.map((t, slot) => {
          if (t === null) return null
          rewards[slot] += t.reward
          if (t.terminated || t.truncated) {
            done[slot] = true
            expect(t.terminated && t.observation.info["is_success"]).toBe(true)
            return null
          }
          return oracleAnswer(t.observation.info)
        })
      }
      expect(rewards.every((r) => r > 0)).toBe(true)
    }).pipe(Effect.provide(envLayer(3, true))))

  it.effect("returns the 2×2 grid as packed RGB when images are on", () =>
    Effect.gen(function*() {
      const env = yield* Environment
      const first = yield* env.reset(0)
      expect(first.image).not.toBeNull()
      expect([first.image!.width, first.image!.height, first.image!.rgb.length]).toEqual([69, 69, 69 * 69 * 3])
    }).pipe(Effect.provide(envLayer(1, false))))

  it.effect("reports an out-of-range route as an EnvironmentError naming the slot", () =>
    Effect.gen(function*() {
      const env = yield* Environment
      const error = yield* Effect.flip(env.reset(0, { routeIndex: 99 }))
      expect(error._tag).toBe("EnvironmentError")
      expect(error.message).toMatch(/route_idx.*out of range/)
    }).pipe(Effect.provide(envLayer(1, true))))
})
