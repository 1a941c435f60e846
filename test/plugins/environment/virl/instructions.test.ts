import { it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { describe, expect } from "vitest"
import { Environment } from "../../../../src/core/environment.ts"
import { Random, type RandomSource, type Rng } from "../../../../src/core/random.ts"
import * as Absolute from "../../../../src/plugins/action-space/absolute.ts"
import * as Dataset from "../../../../src/plugins/dataset/virl-routes.ts"
import { defaultConfig } from "../../../../src/plugins/environment/virl/config.ts"
import { instructionSentences, type Turn, variedSentences } from "../../../../src/domain/virl/instructions.ts"
import * as Virl from "../../../../src/plugins/environment/virl/layer.ts"
import { landmarkClauses } from "../../../../src/plugins/policy/prompt-reader.ts"
import * as PythonRandom from "../../../../src/plugins/random/python-random.ts"
import * as Process from "../../../../src/plugins/reward/process.ts"
import { FIXTURE_DATASET } from "../../../support/fixtures.ts"

const turns: Turn[] = [
  { landmark: "Cinema is on your left", heading: 10, compass: "north", turnClass: "slightly right" },
  { landmark: "No landmark nearby", heading: 100, compass: "east", turnClass: "right" },
  { landmark: "Book Nook is on your right", heading: 190, compass: "south", turnClass: "right" }
]

describe("instruction wording", () => {
  it("keeps the reference's own wording as variant 0 and every word a policy needs in every variant", () => {
    const wordings = new Set<string>()
    const rng = new PythonRandom.PythonRandom(3)
    for (let k = 0; k < 200; k++) {
      const sentences = variedSentences(turns, rng)
      wordings.add(sentences.join("|"))
      expect(sentences).toHaveLength(6)
      turns.forEach((t, i) => {
        expect(sentences[2 * i]).toContain(t.turnClass)
        expect(sentences[2 * i]).toContain(t.compass)
      })
      // the landmarks stay readable after "where"; the default landmark is not named
      expect(landmarkClauses(sentences)).toEqual(["Cinema is on your left", "Book Nook is on your right"])
    }
    expect(wordings.size).toBe(20)
    expect(wordings.has(instructionSentences(turns).join("|"))).toBe(true)
  })

  /** Python's generators, each kept as it is made: the environment's is the first of a layer's. */
  const made: Rng[] = []
  const recording: RandomSource = {
    name: PythonRandom.source.name,
    make: (seed) => {
      const rng = PythonRandom.source.make(seed)
      made.push(rng)
      return rng
    }
  }
  const envWith = (variants: boolean) =>
    Virl.layer(defaultConfig({ resolution: 16, language_only: true, instruction_variants: variants }), 1, 12).pipe(
      Layer.provideMerge(Layer.mergeAll(Dataset.layer(FIXTURE_DATASET), Absolute.layer, Process.layer, Layer.succeed(Random, recording)))
    )

  const episodes = Effect.gen(function*() {
    const env = yield* Environment
    const rng = made[0]!
    const out: Array<{ instruction: string; next: string; success: boolean }> = []
    for (let e = 0; e < 6; e++) {
      let info = (yield* env.reset(0)).info as Record<string, unknown>
      const instruction = String(info["global_instruction"])
      for (;;) {
        const [t] = yield* env.step([JSON.stringify({ action: info["gt_action"] })])
        info = t!.observation.info as Record<string, unknown>
        if (t!.terminated || t!.truncated) break
      }
      out.push({ instruction, next: rng.snapshot().state.join(","), success: info["is_success"] === true })
    }
    return out
  })

  it.effect("varies the wording per episode without touching the reference's draws", () =>
    Effect.gen(function*() {
      const fresh = Effect.sync(() => made.splice(0))
      const plain = yield* Effect.zipRight(fresh, Effect.provide(episodes, envWith(false)))
      const varied = yield* Effect.zipRight(fresh, Effect.provide(episodes, envWith(true)))
      expect(varied.map((e) => e.next)).toEqual(plain.map((e) => e.next))
      expect(varied.every((e) => e.success)).toBe(true)
      expect(varied.filter((e, i) => e.instruction !== plain[i].instruction).length).toBeGreaterThan(2)
    }))
})
