import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import type { FrontierResults } from "../../src/app/frontier-results.ts"
import { readEvents } from "../../src/plugins/tracker/tensorboard.ts"

const ROOT = path.resolve(import.meta.dirname, "../..")
const BIN = path.join(ROOT, "bin/virl.mjs")
const root = fs.mkdtempSync(path.join(os.tmpdir(), "virl-frontier-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

describe("virl run experiments/frontier.ts --quick", () => {
  it(
    "from an empty cache: cities, two bases, four methods of three configurations, and the frontier comparison in both metrics with its intervals and claims",
    async () => {
      const out = path.join(root, "run")
      const t0 = performance.now()
      const { status, stderr } = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
        // the user's command, with a cache of its own (the default datasets and the quick base are built here)
        const child = spawn(process.execPath, [BIN, "run", "experiments/frontier.ts", "--quick", "--out", out], {
          cwd: ROOT,
          env: { ...process.env, VIRL_CACHE: path.join(root, "cache"), VIRL_DATASETS: "" },
          stdio: ["ignore", "ignore", "pipe"]
        })
        let err = ""
        child.stderr.on("data", (d) => (err += String(d)))
        child.on("exit", (code) => resolve({ status: code, stderr: err }))
      })
      console.log(`frontier --quick: ${((performance.now() - t0) / 60000).toFixed(2)} min from an empty cache`)
      expect(status, stderr.slice(-3000)).toBe(0)
      const results = JSON.parse(fs.readFileSync(path.join(out, "results.json"), "utf8")) as { frontier: FrontierResults }
      const f = results.frontier
      // notes tell of what the data allow (KL ranges that do not overlap, say), never of unequal budgets or unfinished seeds
      expect(f.notes.filter((n) => /configurations|have not finished|no validation/.test(n))).toEqual([])
      expect(Object.values(f.configurations).map((c) => c.length)).toEqual([3, 3, 3, 3])
      // two bases, one seed each: the intervals run over bases
      expect(f.replication).toMatchObject({ unit: "base", units: 2, df: 1, seedsPerBase: { "0": [1], "1": [2] } })
      // every configuration at six points, on the validation suite and five test suites, in both metrics
      expect(f.points).toHaveLength(12 * 6)
      expect(Object.keys(f.points[0]!.values.success).sort()).toEqual(["indist", "nyc-grid0", "rule-ood", "sf-grid29", "val-indist", "visual-ood"])
      expect(f.chosenOn).toBe("val-indist")
      expect(f.start?.arm).toBe("init")
      // the chosen points and their differences carry success rate beside per-step accuracy, with intervals
      expect(f.selected.map((s) => s.method)).toEqual(["sft", "ppo-process", "ppo-outcome", "rft"])
      for (const metric of ["step", "success"] as const) {
        const rows = f.selected_differences.filter((c) => c.metric === metric)
        expect(rows.length).toBe(4 * 5)
        for (const c of rows) expect(c.difference.lo).toBeLessThanOrEqual(c.difference.hi)
      }
      // the paper's claims, one Holm family
      expect(f.claims).toHaveLength(10)
      for (const c of f.claims) expect(["supported", "contradicted", "not shown"]).toContain(c.verdict)
      for (
        const file of [
          "plots/frontier.png",
          "plots/frontier.svg",
          "plots/frontier_success.svg",
          "plots/frontier.csv",
          "plots/frontier_kl.svg",
          "frontier_points.csv",
          "results.md"
        ]
      ) {
        expect(fs.existsSync(path.join(out, file))).toBe(true)
      }
      expect(fs.readFileSync(path.join(out, "results.md"), "utf8")).toMatch(/## Frontiers[\s\S]*The paper's claims[\s\S]*Success rate/)
      // each seed's records name its base
      const evals = fs.readFileSync(path.join(out, "evals.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { seed: number; base?: number })
      expect(new Set(evals.map((e) => `${e.seed}:${e.base}`))).toEqual(new Set(["1:0", "2:1"]))
      // TensorBoard's view, written as the run went: an RL arm's updates and evaluations
      const tb = path.join(out, "tb", "ppo-process@lr3e-4", "seed-1")
      const tags = new Set(fs.readdirSync(tb).flatMap((f) => readEvents(path.join(tb, f)).flatMap((e) => e.scalars.map(([tag]) => tag))))
      for (const tag of ["ppo/action_loss", "ppo/clip_fraction", "ppo/success_rate", "eval/indist/per_step_accuracy", "kl/total"]) expect(tags).toContain(tag)
      // how it was made: the commit it ran from, the runtime, the machine
      const made = (results as unknown as { provenance: { commit: string | null; node: string; cpu: { cores: number } } }).provenance
      const head = spawnSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, encoding: "utf8" })
      expect(made.commit).toBe(head.status === 0 ? head.stdout.trim() : null)
      expect(made.node).toBe(process.version)
      expect(made.cpu.cores).toBeGreaterThan(0)
      expect(JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8")).provenance.commit).toBe(made.commit)
      // the resolved config of every arm, without running
      const printed = spawnSync(process.execPath, [BIN, "run", "experiments/frontier.ts", "--quick", "--print-config", "--sft_config.epochs=3"], {
        cwd: ROOT,
        encoding: "utf8"
      })
      const arms =
        (JSON.parse(printed.stdout) as { arms: Record<string, { sft_config: { epochs: number }; num_updates: number; pretrain_config: { seed: number } }> })
          .arms
      expect(Object.keys(arms)).toHaveLength(14)
      expect([arms["init"]!.sft_config.epochs, arms["ppo-outcome@lr3e-4"]!.num_updates]).toEqual([3, 6])
      // the last quick seed (2) trains from the second base
      expect(arms["base"]!.pretrain_config.seed).toBe(1)
      // logs in the reference's format at final points only
      const logs = fs.readdirSync(path.join(out, "seed-1", "ppo-process@lr3e-4", "eval-logs"))
      expect(logs).toContain("indist-step6.jsonl")
      expect(logs).not.toContain("indist-step1.jsonl")
    },
    30 * 60_000
  )
})
