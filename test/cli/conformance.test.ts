import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { FIXTURES } from "../support/fixtures.ts"

const BIN = path.resolve(import.meta.dirname, "../../bin/virl.mjs")
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "virl-cli-"))
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }))

const virl = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8" })

describe("virl conformance", () => {
  it("prints all passed and exits 0 on the reference cases", () => {
    const run = virl("conformance", FIXTURES)
    expect(run.stdout).toMatch(/^\d+ passed, 0 failed$/m)
    expect(run.status).toBe(0)
  })

  it("names a failing case and exits non-zero", () => {
    const dir = path.join(scratch, "tampered")
    fs.mkdirSync(path.join(dir, "cases"), { recursive: true })
    fs.symlinkSync(path.join(FIXTURES, "dataset"), path.join(dir, "dataset"))
    const rewards = JSON.parse(fs.readFileSync(path.join(FIXTURES, "cases", "rewards.json"), "utf8"))
    rewards.cases = rewards.cases.slice(0, 3)
    rewards.cases[1].reward = 42
    fs.writeFileSync(path.join(dir, "cases", "rewards.json"), JSON.stringify(rewards))
    const run = virl("conformance", dir)
    expect(run.stdout).toMatch(/FAIL rewards\.json\[1\].*reward: expected 42/)
    expect(run.stdout).toMatch(/^2 passed, 1 failed$/m)
    expect(run.status).toBe(1)
  })
})
