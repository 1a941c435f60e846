import { Effect, Layer } from "effect"
import { PRESETS } from "../../src/app/config.ts"
import { environmentLayer } from "../../src/app/services.ts"
import { Environment } from "../../src/core/environment.ts"
import type { PolicyInput } from "../../src/core/policy.ts"
import * as Absolute from "../../src/plugins/action-space/absolute.ts"
import { oracleText } from "../../src/plugins/policy/oracle.ts"
import { layer as PythonRandomLayer } from "../../src/plugins/random/python-random.ts"
import * as Process from "../../src/plugins/reward/process.ts"

/** What a policy is shown along the oracle's first `steps` answers of route 0 of a city (absolute rules). */
export const oracleSteps = (dir: string, steps: number): Promise<PolicyInput[]> =>
  Effect.runPromise(
    Effect.provide(
      Effect.gen(function*() {
        const env = yield* Environment
        const out: PolicyInput[] = []
        let o = yield* env.reset(0, { routeIndex: 0 })
        for (let k = 0; k < steps; k++) {
          out.push({ chat: o.chat, image: o.image, info: o.info })
          const [t] = yield* env.step([oracleText(o.info)])
          o = t!.observation
        }
        return out
      }),
      environmentLayer(PRESETS.small, dir, { numEnvs: 1 }).pipe(Layer.provide(Layer.mergeAll(Absolute.layer, Process.layer, PythonRandomLayer)))
    )
  )
