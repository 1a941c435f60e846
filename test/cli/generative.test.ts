import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { virlInBackground } from "../support/processes.ts"

const ROOT = path.resolve(import.meta.dirname, "../..")
const root = fs.mkdtempSync(path.join(os.tmpdir(), "virl-generative-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))
const env = { ...process.env, VIRL_CACHE: path.join(root, "cache"), VIRL_DATASETS: "" }

const virl = (...args: string[]) => virlInBackground(args, { env, cwd: ROOT })

describe("virl run experiments/sft_vs_rl_generative.ts --quick", () => {
  it(
    "from an empty cache: a base, SFT, PPO and RFT arms of a policy that writes its answers; its own metrics; KL over text; its checkpoints evaluate",
    async () => {
      const out = path.join(root, "run")
      const t0 = performance.now()
      const { status, stderr } = await virl("run", "experiments/sft_vs_rl_generative.ts", "--quick", "--out", out)
      console.log(`sft_vs_rl_generative --quick: ${((performance.now() - t0) / 60000).toFixed(2)} min from an empty cache`)
      expect(status, stderr.slice(-3000)).toBe(0)
      type Stat = { mean: number; std: number }
      const results = JSON.parse(fs.readFileSync(path.join(out, "results.json"), "utf8")) as {
        arms: Record<string, Record<string, Record<string, Stat>>>
        klReference: string
      }
      expect(Object.keys(results.arms)).toEqual(["base", "init", "sft", "rl", "rft"])
      for (const [arm, suites] of Object.entries(results.arms)) {
        for (const suite of ["indist", "rule_ood", "visual_ood"]) {
          const m = suites[suite]!
          for (const key of ["per_step_accuracy", "unparsable", "outside_action_space"]) {
            expect(m[key]!.mean, `${arm} ${suite} ${key}`).toBeGreaterThanOrEqual(0)
            expect(m[key]!.mean).toBeLessThanOrEqual(1)
          }
        }
        // KL(base ‖ arm) over text, token by token along the base's answers
        if (arm !== "base") expect(Number.isFinite(suites["kl"]!["total"]!.mean) && suites["kl"]!["total"]!.mean >= 0).toBe(true)
      }
      expect(results.klReference).toBe("base")
      expect(fs.readFileSync(path.join(out, "results.md"), "utf8")).toContain("Answers as written")
      // the checkpoint holds the generator, its architecture and its tokenizer's vocabulary
      const checkpoint = path.join(out, "seed-1", "rl", "checkpoint")
      const stored = JSON.parse(fs.readFileSync(path.join(checkpoint, "checkpoint.json"), "utf8")) as {
        policy: { name: string; config: { vocabulary: string[]; architecture: { width: number } } }
      }
      expect(stored.policy.name).toBe("generative")
      expect(stored.policy.config.architecture.width).toBe(32)
      expect(stored.policy.config.vocabulary.slice(0, 4)).toEqual(["<pad>", "<bos>", "<eos>", "<unk>"])
      // `virl eval` loads it by what it holds, and counts its malformed answers
      const evaluated = await virl("eval", "--policy", checkpoint, "--suite", "indist", "--json", "--eval_config.num_traj=2")
      expect(evaluated.status, evaluated.stderr).toBe(0)
      const metrics = JSON.parse(evaluated.stdout.trim().split("\n").at(-1)!) as { answers: { unparsable: number } }
      expect(metrics.answers.unparsable).toBeGreaterThanOrEqual(0)
    },
    900_000
  )

  it("format_teacher.ts --quick: a base that answers in plain sentences beside the JSON one, PPO from each with and without the format teacher", async () => {
    const out = path.join(root, "format")
    const run = await virl("run", "experiments/format_teacher.ts", "--quick", "--out", out)
    expect(run.status, run.stderr.slice(-3000)).toBe(0)
    const results = JSON.parse(fs.readFileSync(path.join(out, "results.json"), "utf8")) as { arms: Record<string, unknown> }
    expect(Object.keys(results.arms)).toEqual(["base", "plain", "init", "init_plain", "rl_base", "rl_plain", "rl_init", "rl_init_plain"])
    // two bases: the plain one was taught sentences, in a cache entry of its own (the JSON one is the first test's)
    const recipes = fs.readdirSync(path.join(root, "cache")).filter((d) => /^base-[0-9a-f]+$/.test(d)).map((d) =>
      fs.readFileSync(path.join(root, "cache", d, "recipe.json"), "utf8")
    )
    expect(recipes.filter((r) => r.includes('"answer_format": "sentences"')).length).toBe(1)
    expect(recipes.filter((r) => !r.includes("answer_format")).length).toBeGreaterThanOrEqual(1)
  }, 900_000)
})
