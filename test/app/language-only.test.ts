import { Effect, Either, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { PRESETS, resolveConfig } from "../../src/app/config.ts"
import { environmentLayer } from "../../src/app/services.ts"
import { Environment } from "../../src/core/environment.ts"
import * as Absolute from "../../src/plugins/action-space/absolute.ts"
import { oracleText } from "../../src/plugins/policy/oracle.ts"
import { layer as PythonRandomLayer } from "../../src/plugins/random/python-random.ts"
import * as Process from "../../src/plugins/reward/process.ts"
import { removeCity, tinyCity } from "../support/tiny-city.ts"

let city = ""
beforeAll(async () => {
  city = await tinyCity("nyc", 2)
})
afterAll(() => removeCity(city))

/** The first observation and the one after a correct answer, under `env_config.language_only`. */
const firstSteps = (languageOnly: boolean) => {
  const config = Either.getOrThrow(resolveConfig(PRESETS.small, [{ source: "test", values: { "env_config.language_only": languageOnly } }]))
  return Effect.runPromise(
    Effect.scoped(
      Effect.provide(
        Effect.gen(function*() {
          const env = yield* Environment
          const first = yield* env.reset(0, { routeIndex: 0 })
          const [next] = yield* env.step([oracleText(first.info)])
          return { first, next: next!.observation }
        }),
        environmentLayer(config, city, { numEnvs: 1, seed: 3 }).pipe(Layer.provide(Layer.mergeAll(Absolute.layer, Process.layer, PythonRandomLayer)))
      )
    )
  )
}

const text = (o: { readonly chat: ReadonlyArray<{ readonly content: unknown }> }) => JSON.stringify(o.chat)

describe("env_config.language_only (V-IRL-L)", () => {
  it("shows no image and writes the observations out in the language-only template", async () => {
    const vl = await firstSteps(false)
    const l = await firstSteps(true)
    expect(vl.first.image).not.toBeNull()
    expect(l.first.image).toBeNull()
    expect(l.next?.image ?? null).toBeNull()
    expect(text(l.first)).toContain("latest observation from the observation sequence")
    expect(text(l.first)).not.toContain("[Observation format]")
    expect(text(vl.first)).toContain("[Observation format]")
    expect(text(l.first)).not.toContain('"type":"image"')
    expect(text(vl.first)).toContain('"type":"image"')
    // the same route and the same expert answer either way; the history says what is seen in words
    const { obs_act_seq: lSeq, ...lInfo } = l.first.info as Record<string, unknown>
    const { obs_act_seq: vlSeq, ...vlInfo } = vl.first.info as Record<string, unknown>
    expect(lInfo).toEqual(vlInfo)
    expect(vlSeq).toMatch(/^O_1: You observe an image of 4 views;/)
    expect(lSeq).not.toMatch(/image/)
  })

  it("is a flag of the run config with the reference's default (off)", () => {
    expect(PRESETS.small.env_config.language_only).toBe(false)
    const bad = resolveConfig(PRESETS.small, [{ source: "test", values: { "env_config.language_only": "sometimes" } }])
    expect(Either.isLeft(bad) ? String(bad.left) : "").toMatch(/language_only/)
  })
})
