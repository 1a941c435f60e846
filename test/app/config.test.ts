import { Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { PRESETS, readConfigFile, resolveConfig } from "../../src/app/config.ts"
import { PRESET_FILES, presetYaml } from "../../src/app/presets.ts"
import { buildConfig, splitOverrides } from "../../src/cli/overrides.ts"

describe("run configuration", () => {
  it("applies dotted overrides with their types", () => {
    const c = Either.getOrThrow(
      resolveConfig(PRESETS.small, [{ source: "cli", values: { "ppo_config.clip_param": "0.2", seed: "7", "ppo_config.entropy_bonus": "true" } }])
    )
    expect([c.ppo_config.clip_param, c.seed, c.ppo_config.entropy_bonus]).toEqual([0.2, 7, true])
  })

  it("rejects an unknown key naming the nearest valid ones", () => {
    const r = resolveConfig(PRESETS.small, [{ source: "cli", values: { "ppo_config.clip_parm": "0.2" } }])
    expect(Either.isLeft(r) && String(r.left)).toMatch(/cli: unknown key "ppo_config.clip_parm"; did you mean ppo_config.clip_param/)
  })

  it("rejects a value of the wrong type naming the key", () => {
    const r = resolveConfig(PRESETS.small, [{ source: "cli", values: { num_updates: "many" } }])
    expect(Either.isLeft(r) && String(r.left)).toMatch(/num_updates/)
  })

  it("reads a YAML file with a preset and nested keys, then the command line on top", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "virl-cfg-")), "c.yaml")
    fs.writeFileSync(file, "preset: paper\nppo_config:\n  clip_param: 0.3\nnum_updates: 4\n")
    const c = Either.getOrThrow(buildConfig({ preset: "small", configFile: file, overrides: { num_updates: "5" } }))
    expect([c.ppo_config.clip_param, c.num_updates, c.generation_config.temperature]).toEqual([0.3, 5, 0.2])
  })

  it("takes dotted flags out of argv and leaves the CLI's own options", () => {
    const { argv, overrides } = splitOverrides(["node", "virl", "train", "ppo", "--init", "x", "--ppo_config.clip_param=0.2", "--seed", "3", "--out", "y"])
    expect(argv).toEqual(["node", "virl", "train", "ppo", "--init", "x", "--out", "y"])
    expect(overrides).toEqual({ "ppo_config.clip_param": "0.2", seed: "3" })
    // a command without config keeps every flag for itself
    const synth = ["node", "virl", "data", "synth", "--city", "nyc", "--seed", "3", "--out", "z"]
    expect(splitOverrides(synth)).toEqual({ argv: synth, overrides: {} })
  })

  it("ships each preset as its YAML file, written from the code (npm run configs), every key, read back to the preset", () => {
    const root = path.resolve(import.meta.dirname, "../..")
    for (const [name, { file }] of Object.entries(PRESET_FILES)) {
      expect(fs.readFileSync(path.join(root, file), "utf8"), `${file} differs from preset ${name}: run npm run configs`).toBe(presetYaml(name))
      const read = Either.getOrThrow(readConfigFile(path.join(root, file)))
      expect(read.preset).toBe(name)
      expect(Either.getOrThrow(resolveConfig(PRESETS.small!, [{ source: file, values: read.values }]))).toEqual(PRESETS[name])
    }
    expect(Object.keys(PRESET_FILES).sort()).toEqual(Object.keys(PRESETS).sort())
  })
})
