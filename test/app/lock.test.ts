import { Effect, Exit } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { holdLock } from "../../src/app/base-model.ts"
import { silent } from "../../src/app/train.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "virl-lock-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

describe("the base model's build lock", () => {
  it("is held with this process's pid while its scope is open and goes when the work inside fails", async () => {
    const file = path.join(dir, "a.lock")
    const exit = await Effect.runPromiseExit(
      Effect.scoped(
        Effect.gen(function*() {
          yield* holdLock(file, () => false, silent)
          expect(fs.readFileSync(file, "utf8")).toBe(String(process.pid))
          return yield* Effect.fail("the build failed")
        })
      )
    )
    expect(Exit.isFailure(exit)).toBe(true)
    // a long-lived process (a cluster runner) building again is not left waiting on itself
    expect(fs.existsSync(file)).toBe(false)
  })

  it("takes over a lock left by a dead process, and holds nothing when the work is already done", async () => {
    const file = path.join(dir, "b.lock")
    fs.writeFileSync(file, "2147483646")
    await Effect.runPromise(
      Effect.scoped(
        Effect.flatMap(holdLock(file, () => false, silent), () => Effect.sync(() => expect(fs.readFileSync(file, "utf8")).toBe(String(process.pid))))
      )
    )
    expect(fs.existsSync(file)).toBe(false)
    // held by a live process (this one's parent) while the work is there: nothing to hold, nothing removed
    fs.writeFileSync(file, String(process.ppid))
    await Effect.runPromise(Effect.scoped(holdLock(file, () => true, silent)))
    expect(fs.readFileSync(file, "utf8")).toBe(String(process.ppid))
  })
})
