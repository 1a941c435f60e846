import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { loadExperimentFile } from "../../src/app/experiment-file.ts"
import { frontierProblem } from "../../src/app/frontier-checks.ts"
import { armConfig, armOrder } from "../../src/app/run.ts"
import { suiteSpecs } from "../../src/app/suites.ts"
import { type Experiment, experiment, isSweep, trials } from "../../src/core/experiment.ts"
import { frontierOf, onFooting, rlMethod, START } from "../../experiments/footing.ts"

const DIR = path.resolve(import.meta.dirname, "../../experiments")
// runnable files export an experiment or a sweep; the others (footing.ts, short-rl.ts) hold what several share
const files = fs.readdirSync(DIR).filter((f) => f.endsWith(".ts") && fs.readFileSync(path.join(DIR, f), "utf8").includes("export default"))

/** Whatever `virl run` checks before it trains anything. */
const problems = (e: Experiment): string[] => {
  const out: string[] = []
  try {
    armOrder(e.arms)
    const suites = suiteSpecs(e.suites)
    const frontier = frontierProblem(e, suites.map((s) => s.name))
    if (frontier !== undefined) out.push(frontier)
  } catch (err) {
    out.push(String(err))
  }
  for (const quick of [false, true]) {
    for (const arm of e.arms) {
      const c = armConfig(e, arm, { quick }, e.seeds[0]!)
      if (Either.isLeft(c)) out.push(`${arm.name}${quick ? " (quick)" : ""}: ${String(c.left)}`)
    }
  }
  return out
}

describe("the shipped experiment files", () => {
  it.each(files)("%s declares an experiment or sweep whose arms, suites, frontier and every config resolve", async (file) => {
    const loaded = await Effect.runPromise(loadExperimentFile(path.join(DIR, file)))
    const experiments = isSweep(loaded) ? trials(loaded).map((t) => t.experiment) : [loaded]
    for (const e of experiments) expect(problems(e)).toEqual([])
  })

  it("the frontier ablations compare methods over the study's start and learning rates", async () => {
    for (const file of ["frontier.ts", "process_vs_outcome.ts", "verify_iter.ts", "custom_reward.ts"]) {
      const e = (await Effect.runPromise(loadExperimentFile(path.join(DIR, file)))) as Experiment
      expect(e.frontier?.start).toBe("init")
      expect(e.arms.slice(0, 2).map((a) => a.name)).toEqual(["base", "init"])
      const byMethod = e.frontier!.methods.map((m) => e.arms.filter((a) => a.method === m).length)
      expect(new Set(byMethod)).toEqual(new Set([3]))
      expect(e.evaluations).toBeGreaterThanOrEqual(6)
    }
  })

  it("refuses a frontier whose methods had unequal tuning budgets", () => {
    const unequal = experiment(onFooting({ name: "x", arms: [...START, ...rlMethod("a"), ...rlMethod("b").slice(0, 2)], frontier: frontierOf(["a", "b"]) }))
    expect(problems(unequal).join("\n")).toMatch(/as many configurations each .*a 3, b 2/)
    const unknown = experiment(onFooting({ name: "y", arms: [...START, ...rlMethod("a")], frontier: frontierOf(["a", "c"]) }))
    expect(problems(unknown).join("\n")).toMatch(/no arm has method "c"/)
  })
})
