import { Effect, Layer } from "effect"
import { Environment } from "../../src/core/environment.ts"
import * as Absolute from "../../src/plugins/action-space/absolute.ts"
import * as Relative from "../../src/plugins/action-space/relative.ts"
import * as Dataset from "../../src/plugins/dataset/virl-routes.ts"
import { defaultConfig } from "../../src/plugins/environment/virl/config.ts"
import * as Virl from "../../src/plugins/environment/virl/layer.ts"
import * as PythonRandom from "../../src/plugins/random/python-random.ts"
import * as Process from "../../src/plugins/reward/process.ts"

/** Walks every route of a dataset with the ground-truth answer; returns how many succeed. */
export const oracleSuccesses = (dir: string, actionSpace: "absolute" | "relative", routes: number) =>
  Effect.gen(function*() {
    const env = yield* Environment
    let successes = 0
    for (let r = 0; r < routes; r++) {
      let info = (yield* env.reset(0, { routeIndex: r })).info as Record<string, unknown>
      for (;;) {
        const [t] = yield* env.step([JSON.stringify({ action: info["gt_action"] })])
        if (t!.terminated || t!.truncated) {
          if (t!.observation.info["is_success"] === true) successes++
          break
        }
        info = t!.observation.info as Record<string, unknown>
      }
    }
    return successes
  }).pipe(
    Effect.provide(
      Virl.layer(defaultConfig({ resolution: 16, language_only: true, absolute_action: actionSpace === "absolute" }), 1, 7).pipe(
        Layer.provide(Layer.mergeAll(Dataset.layer(dir), actionSpace === "absolute" ? Absolute.layer : Relative.layer, Process.layer, PythonRandom.layer))
      )
    )
  )
