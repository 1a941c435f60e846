import { describe, expect, it } from "vitest"
import type { EpisodeOutcome, SuiteMetrics } from "../../src/core/evaluation.ts"
import type { FrontierSpec } from "../../src/core/experiment.ts"
import { configurations } from "../../src/core/experiment.ts"
import { type FrontierInput, frontierResults } from "../../src/app/frontier.ts"
import type { EvalRecord, KlRecord } from "../../src/app/run-folder.ts"

/** Episodes of 100 answers each, `accuracy` of them right on average over the routes. */
const episodes = (routes: number, accuracy: number, shift = 0): EpisodeOutcome[] =>
  Array.from({ length: routes }, (_, r) => {
    const answers = 100
    // route-to-route variation, the mean still `accuracy` (routes a multiple of 3)
    const correct = Math.round(answers * accuracy) + (((r + shift) % 3) - 1)
    return [answers, correct, correct === answers ? 1 : 0] as const
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

interface Curve {
  readonly arm: string
  /** (in-distribution, OOD) accuracy at each step, per seed offset added. */
  readonly points: ReadonlyArray<readonly [number, number]>
  readonly kl?: ReadonlyArray<number>
  /** Which routes are easier (0, 1 or 2): curves with the same pattern vary alike from route to route. */
  readonly pattern?: number
}

const ROUTES = 30

const records = (curves: ReadonlyArray<Curve>, seeds: ReadonlyArray<number>) => {
  const evals: EvalRecord[] = []
  const kls: KlRecord[] = []
  for (const seed of seeds) {
    for (const c of curves) {
      c.points.forEach(([indist, ood], k) => {
        const step = k + 1
        const total = c.points.length
        const jitter = (seed - 2) * 0.01
        for (const [suite, acc] of [["indist", indist + jitter], ["ood", ood - jitter]] as const) {
          evals.push({ seed, arm: c.arm, step, total, samples: 100 * step, suite, metrics: metrics(episodes(ROUTES, acc, c.pattern)) })
        }
        if (c.kl !== undefined) kls.push({ seed, arm: c.arm, step, total, samples: 100 * step, reference: "base", kl: c.kl[k]!, parts: {}, inputs: 10 })
      })
    }
  }
  return { evals, kls }
}

const spec: FrontierSpec = { methods: ["a", "b"], start: "init", indist: "indist", ood: ["ood"], bootstrap: 300 }

const input = (curves: ReadonlyArray<Curve>, overrides: Partial<FrontierInput> = {}): FrontierInput => {
  const seeds = [1, 2, 3]
  const { evals, kls } = records(curves, seeds)
  const methodOf: Record<string, string> = {}
  for (const c of curves) if (c.arm !== "init") methodOf[c.arm] = c.arm.split("@")[0]!
  return { spec, evals, kls, methodOf, seeds, routeGroup: { indist: "nyc", ood: "sf" }, ...overrides }
}

const init: Curve = { arm: "init", points: [[0.6, 0.5]], kl: [1] }

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

  it("takes each method's best OOD accuracy at an in-distribution accuracy or more, over all its configurations", () => {
    const r = frontierResults(
      input([
        init,
        { arm: "a@1", points: [[0.7, 0.45], [0.8, 0.4]], kl: [2, 3] },
        { arm: "a@2", points: [[0.65, 0.5], [0.9, 0.2]], kl: [2.5, 4] },
        { arm: "b@1", points: [[0.7, 0.3], [0.8, 0.2]], kl: [2, 3] },
        { arm: "b@2", points: [[0.75, 0.25], [0.85, 0.1]], kl: [2.5, 4] }
      ])
    )
    expect(r.notes).toEqual([])
    expect(r.points).toHaveLength(8)
    // a's frontier: (0.65, 0.5), (0.7, 0.45), (0.8, 0.4), (0.9, 0.2) — every point on it
    expect(r.frontiers["a"]!["ood"]!.map(([x, y]) => [x.toFixed(2), y.toFixed(2)])).toEqual([
      ["0.65", "0.50"],
      ["0.70", "0.45"],
      ["0.80", "0.40"],
      ["0.90", "0.20"]
    ])
    // b's point (0.75, 0.25) is beaten by (0.8, 0.2)? no: it has more OOD, less in-distribution — both stay
    expect(r.frontiers["b"]!["ood"]!.map(([x]) => x.toFixed(2))).toEqual(["0.70", "0.75", "0.80", "0.85"])
    // matched at the highest in-distribution accuracy both reach (b's 0.85): a 0.2 (its 0.9 point), b 0.1
    const top = r.matched_indist.find((c) => c.label.startsWith("the highest"))!
    expect(top.level).toBeCloseTo(0.85, 2)
    expect(top.a_value.mean).toBeCloseTo(0.2, 2)
    expect(top.b_value.mean).toBeCloseTo(0.1, 2)
    expect(top.difference.mean).toBeCloseTo(0.1, 2)
    // at the start's in-distribution accuracy (0.6): each method's best OOD anywhere
    const atStart = r.matched_indist.find((c) => c.label.startsWith("the start"))!
    expect(atStart.difference.mean).toBeCloseTo(0.5 - 0.3, 2)
    expect(atStart.difference.lo).toBeGreaterThan(0)
    // the selection rule: the highest in-distribution point of each method, its gain over the start
    expect(r.selected.map((s) => [s.method, s.arm, s.step])).toEqual([
      ["a", "a@2", 2],
      ["b", "b@2", 2]
    ])
    expect(r.selected[0]!.gain["ood"]!.mean).toBeCloseTo(0.2 - 0.5, 2)
    expect(r.selected[0]!.gain["ood"]!.hi).toBeLessThan(0)
    // the most any point gains over the start: a reaches 0.9 in-distribution (+0.3) and at best the start's OOD (0)
    expect(r.best_gain["a"]!["indist"]!.mean).toBeCloseTo(0.3, 2)
    expect(r.best_gain["a"]!["ood"]!.mean).toBeCloseTo(0, 2)
    expect(r.best_gain["b"]!["ood"]!.mean).toBeCloseTo(-0.2, 2)
  })

  it("matches each pair at the in-distribution accuracies both of them reach", () => {
    const r = frontierResults(
      input([
        init,
        { arm: "a@1", points: [[0.7, 0.5], [0.9, 0.3]] },
        { arm: "b@1", points: [[0.7, 0.4], [0.8, 0.2]] },
        { arm: "c@1", points: [[0.5, 0.4], [0.55, 0.3]] }
      ], { spec: { ...spec, methods: ["a", "b", "c"] } })
    )
    const levels = (a: string, b: string) => [...new Set(r.matched_indist.filter((c) => c.a === a && c.b === b).map((c) => c.level.toFixed(2)))]
    // a and b both pass the start (0.6): from there to b's 0.8; c never reaches the start: only where both are
    expect(levels("a", "b")).toEqual(["0.60", "0.70", "0.80"])
    expect(levels("a", "c")).toEqual(["0.55"])
    expect(r.notes.some((n) => n.startsWith("a and c are compared only at 55.0 %"))).toBe(true)
  })

  it("pairs the draws: two methods with the same records differ by exactly 0 in every draw", () => {
    const same = [[0.7, 0.45], [0.8, 0.4]] as const
    const r = frontierResults(input([init, { arm: "a@1", points: same, kl: [2, 3] }, { arm: "b@1", points: same, kl: [2, 3] }]))
    for (const c of [...r.matched_indist, ...r.matched_kl, ...r.selected_differences]) {
      expect([c.difference.mean, c.difference.lo, c.difference.hi]).toEqual([0, 0, 0])
    }
    // while each method's own value varies from draw to draw
    expect(r.matched_indist[0]!.a_value.hi).toBeGreaterThan(r.matched_indist[0]!.a_value.lo)
  })

  it("compares at matched KL within bands every method covers", () => {
    const r = frontierResults(
      input([init, { arm: "a@1", points: [[0.7, 0.5], [0.8, 0.45]], kl: [1, 4] }, { arm: "b@1", points: [[0.7, 0.3], [0.8, 0.2]], kl: [1, 4] }])
    )
    // bands every method has a point in: the lowest and the highest of four
    expect(r.matched_kl.map((c) => c.label)).toEqual(["KL 1.00–1.41 nats", "KL 2.83–4.00 nats"])
    const first = r.matched_kl[0]!
    // the lowest band holds each method's KL-1 point
    expect(first.a_value.mean).toBeCloseTo(0.5, 2)
    expect(first.b_value.mean).toBeCloseTo(0.3, 2)
  })

  it("says when methods had different tuning budgets, and leaves out seeds that did not finish", () => {
    const curves = [init, { arm: "a@1", points: [[0.7, 0.5]] }, { arm: "a@2", points: [[0.7, 0.5]] }, { arm: "b@1", points: [[0.7, 0.3]] }] as Curve[]
    const full = input(curves)
    const partial = { ...full, evals: full.evals.filter((e) => !(e.seed === 3 && e.arm === "b@1")) }
    const r = frontierResults(partial)
    expect(r.notes.some((n) => n.includes("different numbers of configurations") && n.includes("a 2") && n.includes("b 1"))).toBe(true)
    expect(r.notes.some((n) => n.includes("seed(s) 3"))).toBe(true)
    expect(r.seeds).toEqual([1, 2])
  })

  it("is the same for the same records and bootstrap seed, and intervals narrow with more routes", () => {
    const curves = [init, { arm: "a@1", points: [[0.7, 0.5]], kl: [2] }, { arm: "b@1", points: [[0.7, 0.3]], kl: [2], pattern: 1 }] as Curve[]
    const one = frontierResults(input(curves))
    expect(frontierResults(input(curves))).toEqual(one)
    const width = (r: ReturnType<typeof frontierResults>) => r.selected_differences[0]!.difference.hi - r.selected_differences[0]!.difference.lo
    const few = (() => {
      const i = input(curves)
      return frontierResults({ ...i, evals: i.evals.map((e) => ({ ...e, metrics: metrics(e.metrics.episodes.slice(0, 6)) })) })
    })()
    expect(width(few)).toBeGreaterThan(width(one))
  })
})
