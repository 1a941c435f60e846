import { describe, expect, it } from "vitest"
import { Route } from "../../../../src/core/dataset.ts"
import { Schema } from "effect"
import { PanoramaIndex } from "../../../../src/plugins/dataset/panorama-index.ts"
import { DEFAULT_SPLITS } from "../../../../src/plugins/dataset/synth/default.ts"
import { planCity } from "../../../../src/plugins/dataset/synth/generate.ts"
import { buildRail } from "../../../../src/domain/virl/rail.ts"
import { PythonRandom } from "../../../../src/plugins/random/python-random.ts"

/** Every ground-truth action and key-point observation of the default splits, without rendering a pixel. */
const railsOf = (city: string, seed: number, counts: number[]) => {
  const plan = planCity({ city, seed, splits: counts.map((routes, i) => ({ dir: `split-${i}`, routes })) })
  return plan.splits.map(({ routes, sites }) => {
    const index = new PanoramaIndex(sites.map((s) => ({ geocode: s.geocode, panoId: s.panoId })))
    return routes.map((raw, i) => {
      const route = Schema.decodeUnknownSync(Route)(raw)
      return buildRail(
        route,
        i,
        route.init_heading ?? 0,
        { relocation: true, drop_rate: 0.5, straight_line_length: 5, mapping_radius: 20, wrap_turns: false },
        new PythonRandom(i),
        (g, r) => index.nearest(g, r)
      )
    })
  })
}

describe("the default splits", () => {
  const [train, evaluation] = railsOf(DEFAULT_SPLITS.train.city, DEFAULT_SPLITS.train.seed, [DEFAULT_SPLITS.train.routes, DEFAULT_SPLITS.eval.routes])
  const [visual] = railsOf(DEFAULT_SPLITS.visualOod.city, DEFAULT_SPLITS.visualOod.seed, [DEFAULT_SPLITS.visualOod.routes])

  it("mirror the paper's sizes: NYC training routes, 48 NYC evaluation routes, 18 SF routes", () => {
    expect(train.length).toBe(DEFAULT_SPLITS.train.routes)
    expect(evaluation.length).toBe(48)
    expect(visual.length).toBe(18)
  })

  it("hold every relative-turn class and intersections with and without landmarks", () => {
    for (const rails of [train, evaluation]) {
      const points = rails.flatMap((r) => r.waypoints)
      const relative = new Set(points.map((w) => w.relativeAction))
      for (
        const a of ["turn_direction(left)", "turn_direction(right)", "turn_direction(slightly left)", "turn_direction(slightly right)", "forward()", "stop()"]
      ) {
        expect(relative).toContain(a)
      }
      const intersections = points.filter((w) => !w.interpolated && w.intersectionObservation !== "")
      expect(intersections.some((w) => w.observation === "No landmark nearby")).toBe(true)
      expect(intersections.some((w) => w.observation.includes(" is on your "))).toBe(true)
    }
    const sfRelative = new Set(visual.flatMap((r) => r.waypoints.map((w) => w.relativeAction)))
    expect(sfRelative).toContain("turn_direction(left)")
    expect(sfRelative).toContain("turn_direction(right)")
  })

  it("keep evaluation routes apart from training routes", () => {
    const key = (r: (typeof train)[number]) => r.waypoints.map((w) => w.geocode.join(",")).join(";")
    const seen = new Set(train.map(key))
    expect(evaluation.filter((r) => seen.has(key(r))).length).toBe(0)
  })

  it("hold out routes drawn after the training and evaluation routes (a suite's `after`), and a city turned to 0° keeps them, answers aside", () => {
    const after = DEFAULT_SPLITS.train.routes + DEFAULT_SPLITS.eval.routes
    const [, heldOut] = railsOf("nyc", DEFAULT_SPLITS.train.seed, [after, 12])
    const key = (r: (typeof train)[number]) => r.waypoints.map((w) => w.geocode.join(",")).join(";")
    const seen = new Set([...train, ...evaluation].map(key))
    expect(heldOut!.length).toBe(12)
    expect(heldOut!.filter((r) => seen.has(key(r))).length).toBe(0)
    // the same routes as a third split after the default two would draw
    const routesOf = (counts: number[]) =>
      planCity({ city: "nyc", seed: DEFAULT_SPLITS.train.seed, splits: counts.map((routes, i) => ({ dir: `split-${i}`, routes })) }).splits.at(-1)!.routes
    expect(routesOf([after, 12]).map((r) => r.route_results.geocode_list)).toEqual(
      routesOf([DEFAULT_SPLITS.train.routes, DEFAULT_SPLITS.eval.routes, 12]).map((r) => r.route_results.geocode_list)
    )
    // turned: the same routes (relative answers after the first, which depends on the start's heading in the world),
    // other compass answers — north, east, south, west, which NYC's 29° grid never asks
    const [, turned] = railsOf("nyc@0", DEFAULT_SPLITS.train.seed, [after, 12])
    const relative = (rails: typeof train) => rails.map((r) => r.waypoints.slice(1).map((w) => w.relativeAction).join(","))
    expect(relative(turned!)).toEqual(relative(heldOut!))
    const compass = (rails: typeof train) =>
      new Set(rails.flatMap((r) => r.waypoints.map((w) => w.absoluteAction)).filter((a) => a.startsWith("turn_direction")))
    for (const word of ["north", "east", "south", "west"]) {
      expect(compass(train).has(`turn_direction(${word})`)).toBe(false)
      expect(compass(turned!).has(`turn_direction(${word})`)).toBe(true)
    }
  })
})
