import { Effect } from "effect"
import fc from "fast-check"
import { beforeAll, describe, expect, it } from "vitest"
import type { RouteDataset } from "../../../src/core/dataset.ts"
import { absolute } from "../../../src/plugins/action-space/absolute.ts"
import { relative } from "../../../src/plugins/action-space/relative.ts"
import { load } from "../../../src/plugins/dataset/virl-routes.ts"
import { defaultConfig } from "../../../src/plugins/environment/virl/config.ts"
import { NavigationEnv } from "../../../src/plugins/environment/virl/navigation.ts"
import { NOT_FOUND, parseOutput } from "../../../src/domain/virl/output-parsing.ts"
import { verify } from "../../../src/domain/virl/verifier.ts"
import { PythonRandom } from "../../../src/plugins/random/python-random.ts"
import { processReward } from "../../../src/plugins/reward/process.ts"
import { FIXTURE_DATASET } from "../../support/fixtures.ts"

/**
 * Generated model outputs — valid and broken JSON, every field of every type, huge and empty
 * strings, unicode, actions of both action spaces — through parsing, verification and the
 * environment's step: 4,000 parsed, 4,000 verified and 300 episodes of up to 30 answers per run
 * (seeded, so a failure replays).
 */
const KEYS = ["current observation", "current instruction", "action"] as const
const ACTIONS = [...absolute.actions, ...relative.actions, "turn_direction()", "TURN_DIRECTION(north)", "forward", "stop()  "]

const text = fc.oneof(
  fc.constantFrom(...ACTIONS),
  fc.string(),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.noShrink(fc.string({ minLength: 5_000, maxLength: 12_000 })),
  fc.constantFrom("", "intersection", "You observe an intersection", "No landmarks nearby; ", "\n", '"', "\\", "\u2028")
)
const jsonValue: fc.Arbitrary<unknown> = fc.oneof(
  text,
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.oneof(text, fc.integer()), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), text, { maxKeys: 3 })
)
const answer = fc.record(Object.fromEntries(KEYS.map((k) => [k, jsonValue])) as Record<(typeof KEYS)[number], fc.Arbitrary<unknown>>, { requiredKeys: [] })
const output = fc.oneof(
  answer.map((a) => JSON.stringify(a)),
  answer.map((a) => JSON.stringify(a, null, 2)),
  // broken JSON: cut anywhere, wrapped in prose, single-quoted, or the fields as loose text
  fc.tuple(answer, fc.nat()).map(([a, n]) => JSON.stringify(a).slice(0, n)),
  fc.tuple(text, answer, text).map(([before, a, after]) => `${before}${JSON.stringify(a)}${after}`),
  answer.map((a) => JSON.stringify(a).replace(/"/g, "'")),
  fc.tuple(fc.constantFrom(...KEYS), text).map(([k, v]) => `"${k}": "${v}"`),
  text
)

const LEGAL_REWARDS = new Set([1, -1, -1.5])

let dataset: RouteDataset
beforeAll(async () => {
  dataset = await Effect.runPromise(load(FIXTURE_DATASET))
})

describe("generated model outputs", () => {
  it("parse without throwing; a JSON answer's string fields come back as written", () => {
    fc.assert(
      fc.property(output, (o) => {
        const parsed = parseOutput(o)
        for (const v of [parsed.action, parsed.observation, parsed.instruction]) expect(v).not.toBeUndefined()
      }),
      { numRuns: 10_000, seed: 1 }
    )
    fc.assert(
      fc.property(answer, (a) => {
        const parsed = parseOutput(JSON.stringify(a))
        const v = a.action
        if (!("action" in a)) expect(parsed.action).toBe(NOT_FOUND)
        else if (typeof v === "string" || typeof v === "boolean" || v === null) expect(parsed.action).toBe(v)
        else if (typeof v === "number" && Number.isFinite(v) && !Object.is(v, -0)) expect(parsed.action).toBe(v)
      }),
      { numRuns: 1_000, seed: 4 }
    )
  })

  it("get a verdict and a reward from the legal set, never −1.75", () => {
    fc.assert(
      fc.property(output, fc.constantFrom(...absolute.actions, ...relative.actions), fc.boolean(), (o, truth, atIntersection) => {
        const verdict = verify(o, truth, atIntersection ? "Shop is on your left; You observe an intersection" : "No landmarks nearby; ")
        expect(["Correct", "WrongAction", "WrongObservation"]).toContain(verdict._tag)
        expect(LEGAL_REWARDS.has(processReward.step(verdict))).toBe(true)
      }),
      { numRuns: 10_000, seed: 2 }
    )
  })

  it("step the environment without throwing; the rail moves forward by at most one point, the history only grows", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 3 }),
        fc.array(fc.oneof({ weight: 2, arbitrary: output }, { weight: 1, arbitrary: fc.constant("oracle") }), { minLength: 1, maxLength: 30 }),
        (seed, absoluteAction, verifyIter, outputs) => {
          const config = defaultConfig({ language_only: true, resolution: 16, absolute_action: absoluteAction, verify_iter: verifyIter })
          const env = new NavigationEnv(dataset, config, new PythonRandom(seed), processReward)
          let info = env.reset().info
          let index = env.episode.railIndex
          let history = info.obs_act_seq
          for (const o of outputs) {
            const step = env.step(o === "oracle" ? JSON.stringify({ action: info.gt_action }) : o)
            expect(LEGAL_REWARDS.has(step.reward)).toBe(true)
            expect(env.episode.railIndex - index).toBeGreaterThanOrEqual(0)
            expect(env.episode.railIndex - index).toBeLessThanOrEqual(1)
            expect(env.episode.railIndex).toBeLessThan(env.episode.rail.waypoints.length)
            if (step.verdict._tag === "Correct" && !step.terminated) expect(step.info.obs_act_seq.split("\n").length).toBe(history.split("\n").length + 2)
            else expect(step.info.obs_act_seq).toBe(history)
            if (step.verdict._tag !== "Correct" && step.verdict._tag !== "Exhausted") expect(env.episode.railIndex).toBe(index)
            index = env.episode.railIndex
            history = step.info.obs_act_seq
            info = step.info
            if (step.terminated) {
              expect(() => env.step(o)).toThrow(/terminated episode/)
              break
            }
          }
        }
      ),
      { numRuns: 600, seed: 3 }
    )
  })
})
