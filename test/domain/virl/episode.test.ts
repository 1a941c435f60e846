import { describe, expect, it } from "vitest"
import type { Rail, Waypoint } from "../../../src/core/rail.ts"
import { absolute } from "../../../src/plugins/action-space/absolute.ts"
import { relative } from "../../../src/plugins/action-space/relative.ts"
import { Episode } from "../../../src/domain/virl/episode.ts"
import { turnClass } from "../../../src/domain/virl/instructions.ts"

const point = (i: number, absoluteAction: string, relativeAction = absoluteAction): Waypoint => ({
  geocode: [40 + i * 1e-4, -73],
  heading: 90,
  absoluteAction,
  relativeAction,
  observation: "No landmarks nearby",
  intersectionObservation: i === 0 ? "" : "You observe an intersection",
  instruction: `sentence ${i}`,
  instructionIndex: i + 1,
  interpolated: false
})

const rail: Rail = {
  globalInstruction: "1. a\n",
  instructions: ["a"],
  waypoints: [point(0, "turn_direction(east)", "turn_direction(right)"), point(1, "forward()"), point(2, "stop()")],
  routeIndex: 0,
  initialHeading: 0
}

const answer = (action: string) => JSON.stringify({ action })
const config = { verify_iter: 2, language_only: true, max_episode_steps: 300 }

describe("Episode", () => {
  it("retries a wrong action verify_iter times, then forces the index on as a truncated failure", () => {
    const episode = new Episode(rail, absolute, config)
    expect(episode.step(answer("forward()")).verdict._tag).toBe("WrongAction")
    expect(episode.step(answer("stop()")).verdict._tag).toBe("WrongAction")
    const forced = episode.step(answer("turn_direction(east)"))
    expect(forced.verdict._tag).toBe("Exhausted")
    expect([forced.terminated, forced.truncated, forced.info.is_success]).toEqual([false, true, false])
    expect(forced.info["Verify Info"]).toBe("Exceed maximum verify steps")
    expect(episode.railIndex).toBe(1)
  })

  it("ends successfully at stop() after correct answers", () => {
    const episode = new Episode(rail, absolute, config)
    episode.step(answer("turn_direction(east)"))
    episode.step(answer("forward()"))
    const last = episode.step(answer("stop()"))
    expect([last.terminated, last.truncated, last.info.is_success]).toEqual([true, false, true])
    expect(() => episode.step(answer("stop()"))).toThrow(/terminated episode/)
  })

  it("ends at the first answer with verify_iter 0", () => {
    const first = new Episode(rail, absolute, { ...config, verify_iter: 0 }).step(answer("turn_direction(east)"))
    expect(first.verdict._tag).toBe("Exhausted")
    expect(first.truncated).toBe(true)
  })

  it("can be stepped on after a forced end, as the reference: the counter is not reset, so answers are verified until one is right", () => {
    const episode = new Episode(rail, absolute, { ...config, verify_iter: 0 })
    expect(episode.step(answer("turn_direction(east)")).verdict._tag).toBe("Exhausted")
    expect(episode.railIndex).toBe(1)
    // the counter is at −1 and goes on down: −2, −3 ... each answer is verified
    const wrong = episode.step(answer("stop()"))
    expect([wrong.verdict._tag, wrong.terminated, wrong.truncated]).toEqual(["WrongAction", false, false])
    expect(episode.step(answer("turn_direction(east)")).verdict._tag).toBe("WrongAction")
    const right = episode.step(answer("forward()"))
    expect([right.verdict._tag, right.truncated, right.info.is_success]).toEqual(["Correct", false, false])
    // a correct answer resets the counter to verify_iter (0): the next answer is forced again, at stop()
    const forced = episode.step(answer("stop()"))
    expect([forced.verdict._tag, forced.terminated, forced.truncated]).toEqual(["Exhausted", true, true])
    expect(() => episode.step(answer("stop()"))).toThrow(/terminated episode/)
  })

  it("judges against the relative action in the relative space", () => {
    const episode = new Episode(rail, relative, config)
    expect(episode.step(answer("turn_direction(right)")).verdict._tag).toBe("Correct")
  })

  it("applies the TimeLimit on top", () => {
    const episode = new Episode(rail, absolute, { ...config, verify_iter: 10, max_episode_steps: 3 })
    episode.step(answer("x"))
    episode.step(answer("x"))
    expect(episode.step(answer("x")).truncated).toBe(true)
  })
})

describe("turnClass", () => {
  it("keeps the reference's unwrapped difference by default and wraps when asked", () => {
    expect(turnClass(10, 350)).toBe("left")
    expect(turnClass(10, 350, true)).toBe("slightly right")
    expect(turnClass(90, 90)).toBe("slightly left")
  })
})
