import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { verify } from "../../../src/domain/virl/verifier.ts"
import { describingOracle } from "../../../src/plugins/policy/oracle.ts"
import { claimsIntersection, observationCandidates, OTHER_DESCRIPTIONS } from "../../../src/plugins/policy/prompt-reader.ts"
import { PythonRandom } from "../../../src/plugins/random/python-random.ts"

const sentences = [
  "First, turn left to face north.",
  "Move forward until you reach next intersection where Cinema is on your left.",
  "Turn right to face east.",
  "Move forward until you reach next intersection.",
  "Turn slightly left to face northeast.",
  "Move forward until you reach destination where Book Nook is on your right front."
]

const answer = (observation: string, action: string) => JSON.stringify({ "current observation": observation, "current instruction": sentences[1], action })

describe("observation descriptions a policy writes", () => {
  const candidates = observationCandidates(sentences)

  it("include the environment's own texts, so an oracle answer can be written", () => {
    for (
      const own of [
        "No landmarks nearby; ",
        "No landmark nearby; You observe an intersection",
        "Cinema is on your left; You observe an intersection",
        "Book Nook is on your right front; "
      ]
    ) {
      expect(candidates).toContain(own)
    }
  })

  it("are read by the reference's verifier as claiming an intersection exactly when they are meant to", () => {
    // away from an intersection (ground truth has no "intersection"), with a wrong action
    for (const c of candidates) {
      const verdict = verify(answer(c, "turn_direction(west)"), "forward()", "No landmarks nearby; ")
      expect(verdict._tag).toBe(claimsIntersection(c) ? "WrongObservation" : "WrongAction")
    }
    // "No intersection in sight" was scored as claiming one (-1.5); no description may say so
    expect(verify(answer("No intersection in sight", "stop()"), "forward()", "No landmarks nearby; ")._tag).toBe("WrongObservation")
    for (const c of OTHER_DESCRIPTIONS.none) expect(claimsIntersection(c)).toBe(false)
    for (const c of OTHER_DESCRIPTIONS.intersection) expect(claimsIntersection(c)).toBe(true)
  })

  it("the describing oracle answers correctly in several correct words", async () => {
    const expert = describingOracle(new PythonRandom(1))
    const info = { gt_action: "forward()", current_obs: "No landmarks nearby; ", current_instruction: sentences[1] }
    const input = { chat: [{ role: "user" as const, content: [{ type: "text" as const, text: "" }] }], image: null, info }
    const outputs = await Effect.runPromise(expert.act(Array.from({ length: 40 }, () => input), { temperature: 1, greedy: false }))
    const said = new Set(outputs.map((o) => JSON.parse(o.text)["current observation"] as string))
    expect(said.size).toBe(1 + OTHER_DESCRIPTIONS.none.length)
    for (const o of outputs) expect(verify(o.text, "forward()", "No landmarks nearby; ")._tag).toBe("Correct")
  })
})
