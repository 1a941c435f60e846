import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"

const BIN = path.resolve(import.meta.dirname, "../../bin/virl.mjs")
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "virl-cli-data-"))
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }))

const virl = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8" })

describe("virl data synth / check / preview", () => {
  it("generates a city that checks clean and previews as a PNG", () => {
    const dir = path.join(scratch, "sf")
    const synth = virl("data", "synth", "--city", "sf", "--routes", "2", "--seed", "3", "--panorama-width", "128", "--out", dir)
    expect(synth.status).toBe(0)
    expect(synth.stdout).toMatch(/2 routes, \d+ panoramas/)
    const check = virl("data", "check", dir)
    expect(check.stdout).toMatch(/2 routes, \d+ panoramas, 0 problems/)
    expect(check.status).toBe(0)
    const preview = virl("data", "preview", dir, "--routes", "1", "--resolution", "32")
    expect(preview.status).toBe(0)
    expect(fs.readFileSync(path.join(dir, "preview.png")).subarray(1, 4).toString()).toBe("PNG")
  })

  it("honours --seed: two seeds, two cities (the flag is the command's own, not a config key)", () => {
    const routes = (seed: string) => {
      const dir = path.join(scratch, `seed-${seed}`)
      expect(virl("data", "synth", "--city", "nyc", "--routes", "2", "--seed", seed, "--panorama-width", "128", "--out", dir).status).toBe(0)
      return fs.readFileSync(path.join(dir, "route_infos.json"), "utf8")
    }
    expect(routes("3")).not.toEqual(routes("4"))
  })

  it("refuses to replace a folder it did not write", () => {
    const dir = path.join(scratch, "precious")
    fs.mkdirSync(dir)
    fs.writeFileSync(path.join(dir, "thesis.tex"), "keep me")
    const run = virl("data", "synth", "--city", "nyc", "--routes", "1", "--panorama-width", "128", "--out", dir)
    expect(run.status).not.toBe(0)
    expect(run.stderr).toMatch(/exists and is not a generated dataset/)
    expect(fs.readFileSync(path.join(dir, "thesis.tex"), "utf8")).toBe("keep me")
  })

  it("rejects an unknown city naming the valid ones", () => {
    const run = virl("data", "synth", "--city", "paris", "--out", path.join(scratch, "x"))
    expect(run.status).not.toBe(0)
    expect(run.stdout + run.stderr).toMatch(/nyc, sf/)
    expect(fs.existsSync(path.join(scratch, "x"))).toBe(false)
  })
})
