import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const ROOT = path.resolve(import.meta.dirname, "../..")
const BIN = path.join(ROOT, "bin/virl.mjs")
const virl = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: "utf8" })

interface Printed {
  readonly arms: Record<string, { generation_config: { temperature: number }; optimizer_config: { init_lr: number }; num_processes: number }>
}

describe("virl run's config options", () => {
  it("lists --config and --preset in its help", () => {
    const help = virl("run", "--help")
    expect(help.stdout).toContain("--config")
    expect(help.stdout).toContain("--preset")
  }, 60_000)

  it("starts an experiment from a YAML config or a preset: the experiment's own values and the command line's still win", () => {
    const printed = (...extra: string[]) => JSON.parse(virl("run", "experiments/sft_vs_rl.ts", "--print-config", ...extra).stdout) as Printed
    const small = printed()
    expect(small.arms["ppo-process"]!.generation_config.temperature).toBe(1)
    // configs/virl_vl.yaml: the paper's sampling temperature and one environment
    for (const p of [printed("--config", "configs/virl_vl.yaml"), printed("--preset", "paper")]) {
      expect(p.arms["ppo-process"]!.generation_config.temperature).toBe(0.2)
      expect(p.arms["ppo-process"]!.num_processes).toBe(1)
    }
    const flagged = printed("--config", "configs/virl_vl.yaml", "--num_processes=4")
    expect(flagged.arms["ppo-process"]!.num_processes).toBe(4)
  }, 60_000)

  it("refuses a config file with a key the schema lacks, naming the key", () => {
    const bad = virl("run", "experiments/sft_vs_rl.ts", "--print-config", "--config", "test/fixtures/configs/unknown-key.yaml")
    expect(bad.status).not.toBe(0)
    expect(bad.stderr + bad.stdout).toMatch(/ppo_config\.clip_parm/)
  }, 60_000)
})
