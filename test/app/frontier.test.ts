import { describe, expect, it } from "vitest"
import type { EpisodeOutcome, SuiteMetrics } from "../../src/core/evaluation.ts"
import type { FrontierSpec } from "../../src/core/experiment.ts"
import { configurations } from "../../src/core/experiment.ts"
import { validationLeak } from "../../src/app/frontier-checks.ts"
import { type FrontierInput, frontierResults } from "../../src/app/frontier.ts"
import { intervalsText } from "../../src/app/frontier-report.ts"
import type { EvalRecord, KlRecord } from "../../src/app/run-folder.ts"
import { studentQuantile } from "../../src/app/statistics.ts"

const ROUTES = 30

/**
 * Episodes of 100 answers each, `accuracy` of them right on average over the routes (routes
 * vary by ±1 answer in a pattern), and the first `success · routes` routes completed.
 */
const episodes = (accuracy: number, success: number, pattern = 0): EpisodeOutcome[] =>
  Array.from({ length: ROUTES }, (_, r) => {
    const correct = Math.round(100 * accuracy) + (((r + pattern) % 3) - 1)
    return [100, correct, r < Math.round(success * ROUTES) ? 1 : 0] as const
  })

const metrics = (eps: EpisodeOutcome[]): SuiteMetrics => {
  const answers = eps.reduce((s, e) => s + e[0], 0)
  const correct = eps.reduce((s, e) => s + e[1], 0)
  return {
    per_step_accuracy: correct / answers,
    success_rate: eps.reduce((s, e) => s + e[2], 0) / eps.length,
    mean_reward: 0,
    std_reward: 0,
    mean_steps: answers / eps.length,
    mean_verification_steps: 0,
    num_traj: eps.length,
    rates: {},
    episodes: eps
  }
}

/** A suite's (per-step accuracy, success) at one point. */
type At = readonly [number, number]

interface Curve {
  readonly arm: string
  /** Per point: validation, in-distribution test, OOD test. */
  readonly points: ReadonlyArray<{ readonly val: At; readonly indist: At; readonly ood: At }>
  readonly kl?: ReadonlyArray<number>
  readonly pattern?: number
}

const p = (val: number, indist: number, ood: number, success = 0.5) => ({
  val: [val, success] as At,
  indist: [indist, success] as At,
  ood: [ood, success] as At
})

/** Records of `curves` for each seed, its base's offset (per base) and its own jitter added to every accuracy. */
const records = (curves: ReadonlyArray<Curve>, seeds: ReadonlyArray<{ seed: number; base?: number; shift: number }>) => {
  const evals: EvalRecord[] = []
  const kls: KlRecord[] = []
  for (const { seed, base, shift } of seeds) {
    for (const c of curves) {
      c.points.forEach((point, k) => {
        const step = k + 1
        const total = c.points.length
        for (const suite of ["val", "indist", "ood"] as const) {
          const [acc, succ] = point[suite]
          evals.push({
            seed,
            ...(base === undefined ? {} : { base }),
            arm: c.arm,
            step,
            total,
            samples: 100 * step,
            suite,
            metrics: metrics(episodes(acc + shift, succ, c.pattern))
          })
        }
        if (c.kl !== undefined) kls.push({ seed, arm: c.arm, step, total, samples: 100 * step, reference: "base", kl: c.kl[k]!, parts: {}, inputs: 10 })
      })
    }
  }
  return { evals, kls }
}

const spec: FrontierSpec = { methods: ["a", "b"], start: "init", indist: "indist", ood: ["ood"], validation: "val" }
const THREE_SEEDS = [{ seed: 1, shift: -0.01 }, { seed: 2, shift: 0 }, { seed: 3, shift: 0.01 }]

const input = (curves: ReadonlyArray<Curve>, overrides: Partial<FrontierInput> = {}, seeds = THREE_SEEDS): FrontierInput => {
  const { evals, kls } = records(curves, seeds)
  const methodOf: Record<string, string> = {}
  for (const c of curves) if (c.arm !== "init") methodOf[c.arm] = c.arm.split("@")[0]!
  return { spec, evals, kls, methodOf, seeds: seeds.map((s) => s.seed), routeGroup: { val: "nyc-val", indist: "nyc", ood: "sf" }, ...overrides }
}

const init: Curve = { arm: "init", points: [p(0.6, 0.6, 0.5)], kl: [1] }

describe("frontiers", () => {
  it("names configurations METHOD@LABEL and tags them with the method", () => {
    const arms = configurations("sft", { recipe: { kind: "sft", from: "init" }, config: { "sft_config.epochs": 3 } }, [
      { label: "lr1e-3", config: { "sft_config.init_lr": 1e-3 } },
      { label: "lr3e-3", config: { "sft_config.init_lr": 3e-3 } }
    ])
    expect(arms.map((a) => [a.name, a.method, a.config])).toEqual([
      ["sft@lr1e-3", "sft", { "sft_config.epochs": 3, "sft_config.init_lr": 1e-3 }],
      ["sft@lr3e-3", "sft", { "sft_config.epochs": 3, "sft_config.init_lr": 3e-3 }]
    ])
  })

  it("chooses each method's point on the validation suite, never on a test suite", () => {
    // a@2's step 2 is best on the test in-distribution suite; a@1's step 2 is best on validation
    const r = frontierResults(
      input([
        init,
        { arm: "a@1", points: [p(0.7, 0.7, 0.45), p(0.85, 0.8, 0.4)] },
        { arm: "a@2", points: [p(0.65, 0.65, 0.5), p(0.8, 0.9, 0.2)] },
        { arm: "b@1", points: [p(0.7, 0.7, 0.3), p(0.8, 0.8, 0.2)] }
      ], { methodOf: { "a@1": "a", "a@2": "a", "b@1": "b" } })
    )
    expect(r.chosenOn).toBe("val")
    expect(r.selected.map((s) => [s.method, s.arm, s.step])).toEqual([
      ["a", "a@1", 2],
      ["b", "b@1", 2]
    ])
    // its test values and its gain over the start, in both metrics
    expect(r.selected[0]!.values.step["ood"]!.mean).toBeCloseTo(0.4, 6)
    expect(r.selected[0]!.gain.step["ood"]!.mean).toBeCloseTo(0.4 - 0.5, 6)
    expect(r.selected[0]!.gain.step["ood"]!.hi).toBeLessThan(0)
    expect(r.selected[0]!.values.success["ood"]!.mean).toBeCloseTo(0.5, 6)
    // the chosen configuration is the method's curve
    expect(r.paths.filter((x) => x.chosen).map((x) => x.arm)).toEqual(["a@1", "b@1"])
  })

  it("without a validation suite chooses on the in-distribution test and says so", () => {
    const r = frontierResults(
      input([init, { arm: "a@1", points: [p(0.9, 0.7, 0.4)] }, { arm: "a@2", points: [p(0.7, 0.9, 0.2)] }, { arm: "b@1", points: [p(0.7, 0.7, 0.3)] }], {
        spec: { methods: spec.methods, start: "init", indist: "indist", ood: ["ood"] },
        methodOf: { "a@1": "a", "a@2": "a", "b@1": "b" }
      })
    )
    expect(r.chosenOn).toBe("indist")
    expect(r.selected[0]!.arm).toBe("a@2")
    expect(r.notes.some((n) => n.startsWith("no validation suite"))).toBe(true)
  })

  it("matches methods along their chosen configurations, interpolated at levels of validation accuracy above the start", () => {
    // start 0.6; a reaches 0.9 on validation, b 0.8: levels 0.6 + (0.8 − 0.6) · (1/3, 2/3, 1)
    const r = frontierResults(
      input([
        init,
        { arm: "a@1", points: [p(0.7, 0.7, 0.4), p(0.9, 0.9, 0.2)] },
        { arm: "b@1", points: [p(0.7, 0.7, 0.3), p(0.8, 0.8, 0.1)] }
      ])
    )
    const rows = r.matched_indist.filter((c) => c.metric === "step" && c.suite === "ood")
    expect(rows.map((c) => c.level.toFixed(4))).toEqual(["0.6667", "0.7333", "0.8000"])
    // at 0.8: a halfway between its 0.7 (OOD 0.4) and 0.9 (OOD 0.2) points: 0.3; b at its 0.8 point: 0.1
    const top = rows[2]!
    expect(top.a_value.mean).toBeCloseTo(0.3, 2)
    expect(top.b_value.mean).toBeCloseTo(0.1, 2)
    expect(top.difference.mean).toBeCloseTo(0.2, 2)
    // at 0.6667: two thirds from the start (0.5) to the first point (0.4 for a, 0.3 for b)
    expect(rows[0]!.a_value.mean).toBeCloseTo(0.5 - (2 / 3) * 0.1, 2)
    expect(rows[0]!.b_value.mean).toBeCloseTo(0.5 - (2 / 3) * 0.2, 2)
  })

  it("pairs everything: two methods with the same records differ by exactly 0", () => {
    const same = [p(0.7, 0.7, 0.45), p(0.8, 0.8, 0.4)]
    const r = frontierResults(input([init, { arm: "a@1", points: same, kl: [2, 3] }, { arm: "b@1", points: same, kl: [2, 3] }]))
    for (const c of [...r.matched_indist, ...r.matched_kl, ...r.selected_differences]) {
      for (const x of [c.difference.mean, c.difference.lo, c.difference.hi]) expect(x).toBeCloseTo(0, 12)
    }
    // while each method's own value has an interval
    expect(r.matched_indist[0]!.a_value.hi).toBeGreaterThan(r.matched_indist[0]!.a_value.lo)
  })

  it("compares at matched KL within bands both methods cover", () => {
    const r = frontierResults(
      input([init, { arm: "a@1", points: [p(0.7, 0.7, 0.5), p(0.8, 0.8, 0.45)], kl: [1, 4] }, {
        arm: "b@1",
        points: [p(0.7, 0.7, 0.3), p(0.8, 0.8, 0.2)],
        kl: [1, 4]
      }])
    )
    const step = r.matched_kl.filter((c) => c.metric === "step")
    expect(step.map((c) => c.label)).toEqual(["KL 1.00–1.41 nats (1 and 1 points)", "KL 2.83–4.00 nats (1 and 1 points)"])
    expect(step[0]!.a_value.mean).toBeCloseTo(0.5, 2)
    expect(step[0]!.b_value.mean).toBeCloseTo(0.3, 2)
  })

  it("runs its intervals over bases when there are several: t with bases − 1 degrees of freedom", () => {
    const curves = [init, { arm: "a@1", points: [p(0.7, 0.7, 0.45)] }, { arm: "b@1", points: [p(0.7, 0.7, 0.3)], pattern: 1 }]
    // three bases two seeds each: bases differ by 3 points, seeds within a base by 0.2
    const seeds = [0, 1, 2].flatMap((b) => [0, 1].map((k) => ({ seed: 1 + 2 * b + k, base: b, shift: 0.03 * b + 0.002 * k })))
    const r = frontierResults(input(curves, {}, seeds))
    expect(r.replication).toMatchObject({ unit: "base", units: 3, df: 2, seedsPerBase: { "0": [1, 2], "1": [3, 4], "2": [5, 6] } })
    const e = r.points.find((x) => x.arm === "a@1")!.values.step["ood"]!
    // between bases: the three base means 0.451, 0.481, 0.511 — sd 0.03, so se² ≥ 0.03² / 3
    expect(e.df).toBe(2)
    expect(e.se).toBeGreaterThanOrEqual(0.03 / Math.sqrt(3) - 1e-9)
    expect(e.hi - e.mean).toBeCloseTo(studentQuantile(0.975, 2) * e.se, 9)
    // the same seeds read as one base: t over six seeds, narrower
    const flat = frontierResults(input(curves, {}, seeds.map(({ seed, shift }) => ({ seed, shift }))))
    expect(flat.replication).toMatchObject({ unit: "seed", units: 6, df: 5 })
    const f = flat.points.find((x) => x.arm === "a@1")!.values.step["ood"]!
    expect(f.hi - f.lo).toBeLessThan(e.hi - e.lo)
    expect(flat.notes.some((n) => n.includes("one base"))).toBe(true)
    // the report says which spread the intervals carry
    expect(intervalsText(r)).toContain("spread between bases (t with 2 degrees of freedom)")
    expect(intervalsText(flat)).toContain("spread between seeds (t with 5 degrees of freedom)")
    const single = frontierResults(input(curves, {}, [{ seed: 1, shift: 0 }]))
    expect(single.replication.unit).toBe("route")
    expect(intervalsText(single)).toContain("sampling of routes alone")
    expect(intervalsText(single)).not.toContain("spread between")
  })

  it("widens intervals with fewer routes", () => {
    const curves = [init, { arm: "a@1", points: [p(0.7, 0.7, 0.5)], kl: [2] }, { arm: "b@1", points: [p(0.7, 0.7, 0.3)], kl: [2], pattern: 1 }]
    const one = frontierResults(input(curves))
    expect(frontierResults(input(curves))).toEqual(one)
    const width = (r: ReturnType<typeof frontierResults>) => r.selected_differences.find((c) => c.suite === "ood")!.difference.se
    const i = input(curves)
    const few = frontierResults({ ...i, evals: i.evals.map((e) => ({ ...e, metrics: metrics(e.metrics.episodes.slice(0, 6)) })) })
    expect(width(few)).toBeGreaterThan(width(one))
  })

  it("tests the declared claims as one family, Holm-corrected, in their own metric", () => {
    const curves = [
      { arm: "init", points: [{ val: [0.6, 0.2], indist: [0.6, 0.2], ood: [0.5, 0.1] }] } as Curve,
      { arm: "a@1", points: [{ val: [0.7, 0.4], indist: [0.7, 0.4], ood: [0.5, 0.6] }] } as Curve,
      { arm: "b@1", points: [{ val: [0.7, 0.4], indist: [0.7, 0.4], ood: [0.5, 0.1] }] } as Curve
    ]
    const claims: FrontierSpec["claims"] = [
      { claim: "a raises OOD success", paper: "Fig. 7", metric: "success", suite: "ood", test: { gain: "a" } },
      { claim: "b raises OOD success", paper: "Fig. 7", metric: "success", suite: "ood", test: { gain: "b" } },
      { claim: "a ahead of b", paper: "Fig. 7", metric: "success", suite: "ood", test: { difference: ["a", "b"] } },
      { claim: "b lowers OOD per-step", paper: "Fig. 6", metric: "step", suite: "ood", test: { gain: "b" }, direction: "down" }
    ]
    // six seeds of one base: t with 5 degrees of freedom
    const six = [1, 2, 3, 4, 5, 6].map((seed) => ({ seed, shift: 0.002 * seed }))
    const r = frontierResults(input(curves, { spec: { ...spec, claims } }, six))
    expect(r.claims.map((c) => c.verdict)).toEqual(["supported", "not shown", "supported", "not shown"])
    expect(r.claims[0]!.estimate.mean).toBeCloseTo(0.5, 6)
    for (const c of r.claims) expect(c.holm_p).toBeGreaterThanOrEqual(c.estimate.p)
    expect(r.claims[0]!.statistic).toBe("a (a@1 step 1) − init")
  })

  it("says when methods had different tuning budgets, and leaves out seeds that did not finish", () => {
    const curves = [init, { arm: "a@1", points: [p(0.7, 0.7, 0.5)] }, { arm: "a@2", points: [p(0.7, 0.7, 0.5)] }, { arm: "b@1", points: [p(0.7, 0.7, 0.3)] }]
    const full = input(curves)
    const partial = { ...full, evals: full.evals.filter((e) => !(e.seed === 3 && e.arm === "b@1")) }
    const r = frontierResults(partial)
    expect(r.notes.some((n) => n.includes("different numbers of configurations") && n.includes("a 2") && n.includes("b 1"))).toBe(true)
    expect(r.notes.some((n) => n.includes("seed(s) 3"))).toBe(true)
    expect(r.seeds).toEqual([1, 2])
  })
})

describe("validation routes", () => {
  const test = { name: "indist", dataset: { synth: "nyc", seed: 0, after: 304 }, episodes: 100 }
  it("are refused where they share routes with a test suite, at any grid angle", () => {
    expect(validationLeak({ name: "val", dataset: { synth: "nyc", seed: 0, after: 1304 }, episodes: 100 }, [test])).toBeUndefined()
    expect(validationLeak({ name: "val", dataset: { synth: "nyc", seed: 0, after: 350 }, episodes: 100 }, [test])).toMatch(
      /shares routes with the test suite indist/
    )
    expect(validationLeak({ name: "val", dataset: { synth: "nyc@0", seed: 0, after: 304 }, episodes: 10 }, [test])).toMatch(/routes 304–313 of nyc@0/)
    // another city or another layout seed shares nothing
    expect(validationLeak({ name: "val", dataset: { synth: "sf", seed: 0, after: 304 }, episodes: 100 }, [test])).toBeUndefined()
    expect(validationLeak({ name: "val", dataset: { synth: "nyc", seed: 5, after: 304 }, episodes: 100 }, [test])).toBeUndefined()
    expect(validationLeak({ name: "val", dataset: "eval", episodes: 10 }, [{ name: "indist", dataset: "eval", episodes: 10 }])).toMatch(/same data/)
  })
})
