import { describe, expect, it } from "vitest"
import { Verdict } from "../../../src/core/reward.ts"
import { reMatch } from "../../../src/domain/virl/output-parsing.ts"
import { loads } from "../../../src/domain/virl/python-json.ts"
import { verify } from "../../../src/domain/virl/verifier.ts"

describe("Python-compatible json.loads", () => {
  it("accepts NaN and Infinity as Python does", () => {
    expect(loads('{"a": NaN, "b": -Infinity}')).toEqual(new Map<string, unknown>([["a", NaN], ["b", -Infinity]]))
  })

  it("keeps the last of duplicate keys and rejects trailing commas, extra data and raw control characters", () => {
    expect((loads('{"k": 1, "k": 2}') as Map<string, unknown>).get("k")).toBe(2)
    expect(() => loads('{"k": 1,}')).toThrow()
    expect(() => loads('{"k": 1} x')).toThrow(/Extra data/)
    expect(() => loads('"a\tb"')).toThrow(/control character/)
  })

  it("joins surrogate pairs and keeps a lone surrogate", () => {
    expect(loads('"\\ud83d\\ude00"')).toBe("😀")
    expect(loads('"\\ud83d"')).toBe("\ud83d")
  })
})

describe("reMatch", () => {
  it("returns the JSON value even when it is not a string, as the reference does", () => {
    expect(reMatch('{"action": NaN}', "action")).toBeNaN()
    expect(reMatch('{"action": [1]}', "action")).toEqual([1])
  })

  it("falls back to the pattern, whose '.' stops only at a newline", () => {
    expect(reMatch('noise "action": "a\u2029b" noise', "action")).toBe("a\u2029b")
    expect(reMatch('"action": "a\nb"', "action")).toBe("None")
  })
})

describe("verify", () => {
  it("gives a legal verdict where the reference raises on a non-string observation", () => {
    const numeric = verify('{"current observation": 7, "action": "x"}', "forward()", "No landmarks nearby")
    expect(numeric).toEqual(Verdict.WrongAction({ parsed: true }))
    const atIntersection = verify('{"current observation": null, "action": "x"}', "stop()", "Cafe at the intersection is on your left")
    expect(atIntersection).toEqual(Verdict.WrongObservation({ claimedIntersection: false, parsed: true }))
  })

  it("treats a list observation with Python's membership test", () => {
    const v = verify('{"current observation": ["intersection"], "action": "x"}', "forward()", "No landmarks nearby")
    expect(v).toEqual(Verdict.WrongObservation({ claimedIntersection: true, parsed: true }))
  })

  it("marks an answer with no action as unparsed", () => {
    expect(verify("I am lost", "forward()", "No landmarks nearby")).toEqual(Verdict.WrongAction({ parsed: false }))
  })
})
