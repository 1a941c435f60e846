import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PRESETS } from "../src/app/config.ts"
import { environmentLayer } from "../src/app/services.ts"
import { Environment } from "../src/core/environment.ts"
import type { PolicyInput } from "../src/core/policy.ts"
import * as Absolute from "../src/plugins/action-space/absolute.ts"
import { synthesize } from "../src/plugins/dataset/synth/generate.ts"
import { oracleText } from "../src/plugins/policy/oracle.ts"
import * as Process from "../src/plugins/reward/process.ts"
import * as PythonRandom from "../src/plugins/random/python-random.ts"

/**
 * What a policy is shown along the oracle's episodes on `routes` routes of a small synthetic NYC
 * (at most `steps` per route): realistic inputs for the training benchmarks.
 */
export const oracleInputs = async (routes: number, steps = Infinity): Promise<PolicyInput[]> => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "virl-bench-inputs-"))
  const dir = path.join(scratch, "nyc")
  await Effect.runPromise(synthesize({ city: "nyc", seed: 1, splits: [{ dir, routes }], panorama: { width: 512, height: 256 } }))
  const inputs = await Effect.runPromise(
    Effect.provide(
      Effect.gen(function*() {
        const env = yield* Environment
        const out: PolicyInput[] = []
        for (let r = 0; r < routes; r++) {
          let o = yield* env.reset(0, { routeIndex: r })
          for (let k = 0; k < steps; k++) {
            out.push({ chat: o.chat, image: o.image, info: o.info })
            const [t] = yield* env.step([oracleText(o.info)])
            if (t!.terminated || t!.truncated) break
            o = t!.observation
          }
        }
        return out
      }),
      environmentLayer(PRESETS.small, dir, { numEnvs: 1 }).pipe(Layer.provide(Layer.mergeAll(Absolute.layer, Process.layer, PythonRandom.layer)))
    )
  )
  fs.rmSync(scratch, { recursive: true, force: true })
  return inputs
}
