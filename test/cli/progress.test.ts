import { describe, expect, it } from "vitest"
import { duration, progressBar } from "../../src/cli/progress.ts"

/** A bar written to a list, on a clock the test moves. */
const recorded = (tty: boolean) => {
  const lines: string[] = []
  let now = Date.parse("2026-12-07T10:00:00Z")
  const bar = progressBar("evaluations", { tty, write: (t) => lines.push(t), now: () => now })
  return { lines, bar, advance: (s: number) => (now += s * 1000) }
}

describe("progress bars", () => {
  it("off a terminal: a timestamped line at the start, at least every 30 s while it moves, and at the end, with rate and time left", () => {
    const { lines, bar, advance } = recorded(false)
    bar(0, 100)
    advance(10)
    bar(10, 100) // within 30 s of the last line: nothing
    advance(21)
    bar(25, 100)
    advance(31)
    bar(60, 100)
    advance(40)
    bar(100, 100)
    expect(lines).toEqual([
      "10:00:00 evaluations [..............................] 0/100 0s elapsed\n",
      "10:00:31 evaluations [########......................] 25/100 31s elapsed, 0.81/s, 1m33s left\n",
      "10:01:02 evaluations [##################............] 60/100 1m02s elapsed, 0.97/s, 41s left\n",
      "10:01:42 evaluations [##############################] 100/100 1m42s, 0.98/s\n"
    ])
  })

  it("on a terminal: redrawn in place as the percentage moves, ended by a newline", () => {
    const { lines, bar, advance } = recorded(true)
    bar(0, 4)
    advance(2)
    bar(1, 4)
    bar(1, 4)
    advance(2)
    bar(4, 4)
    expect(lines).toEqual([
      "\revaluations [..............................] 0/4 0s elapsed\x1b[K",
      "\revaluations [########......................] 1/4 2s elapsed, 0.50/s, 6s left\x1b[K",
      "\revaluations [##############################] 4/4 4s, 1.00/s\x1b[K\n"
    ])
  })

  it("says durations as people do", () => {
    expect([duration(5), duration(65), duration(3725), duration(Number.NaN)]).toEqual(["5s", "1m05s", "1h02m", "?"])
  })
})
