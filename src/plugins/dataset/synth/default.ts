import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DatasetError } from "../../../core/dataset.ts"
import { buildOnce } from "../../../core/files.ts"
import { RECIPE_VERSION, synthesize, type SynthRequest } from "./generate.ts"
import { VARIED_PREFIX } from "./varied.ts"
import { textSetting } from "../../../core/settings.ts"

/**
 * The embedded default: the paper's three evaluation settings on synthetic cities, generated
 * on first use into a cache folder and reused after. NYC training routes; 48 other NYC routes
 * for in-distribution and rule-OOD evaluation; 18 San Francisco routes for visual-OOD.
 */
export const DEFAULT_SPLITS = {
  train: { city: "nyc", seed: 0, routes: 256 },
  eval: { city: "nyc", seed: 0, routes: 48 },
  visualOod: { city: "sf", seed: 1, routes: 18 }
} as const

export interface DefaultDatasets {
  readonly root: string
  /** NYC training routes. */
  readonly train: string
  /** 48 NYC routes: in-distribution and rule-OOD suites. */
  readonly eval: string
  /** 18 San Francisco routes: the visual-OOD suite. */
  readonly visualOod: string
}

export const cacheRoot = (): string => textSetting("VIRL_CACHE") ?? path.join(os.homedir(), ".cache", "virl")

export const defaultPaths = (root = path.join(cacheRoot(), `default-r${RECIPE_VERSION}`)): DefaultDatasets => ({
  root,
  train: path.join(root, "nyc-train"),
  eval: path.join(root, "nyc-eval"),
  visualOod: path.join(root, "sf")
})

const MARKER = "recipe.json"

const recipe = () => JSON.stringify({ recipe: RECIPE_VERSION, splits: DEFAULT_SPLITS }, null, 2)

export const isReady = (paths: DefaultDatasets): boolean => {
  try {
    return fs.readFileSync(path.join(paths.root, MARKER), "utf8") === recipe()
  } catch {
    return false
  }
}

type Progress = { readonly onProgress?: (done: number, total: number) => void; readonly log?: (line: string) => void }

/**
 * Several cities rendered at once, `threads` render workers each, their progress summed into one
 * bar: a city's workers spend much of their time starting, so more cities at once beat more
 * workers per city (docs/measurements.md). Each city's bytes do not depend on how it is rendered.
 */
const renderCities = (cities: ReadonlyArray<Omit<SynthRequest, "onProgress" | "threads">>, options: Progress) => {
  const cores = os.availableParallelism()
  const concurrency = Math.max(1, Math.min(cities.length, Math.floor(cores / 2)))
  const threads = Math.max(2, Math.floor(cores / concurrency))
  const done = cities.map(() => 0)
  const totals = cities.map(() => 0)
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
  return Effect.runPromise(
    Effect.forEach(
      cities,
      (city, k) =>
        synthesize({
          ...city,
          threads,
          onProgress: (d, t) => {
            done[k] = d
            totals[k] = t
            options.onProgress?.(sum(done), sum(totals))
          }
        }),
      { concurrency, discard: true }
    )
  )
}

/**
 * The default datasets, generated if the cache lacks them or holds another recipe (built in a
 * staging folder and renamed into place: see `buildOnce`).
 */
export const ensureDefault = (options: { readonly root?: string } & Progress = {}): Effect.Effect<DefaultDatasets, DatasetError> => {
  const paths = defaultPaths(options.root)
  return Effect.tryPromise({
    try: () =>
      buildOnce(paths.root, MARKER, recipe(), async (staging) => {
        options.log?.(`generating the default synthetic cities into ${paths.root} (once)`)
        const at = defaultPaths(staging)
        const nyc = DEFAULT_SPLITS.train
        const splits = [
          { dir: at.train, routes: nyc.routes },
          { dir: at.eval, routes: DEFAULT_SPLITS.eval.routes }
        ]
        const sf = DEFAULT_SPLITS.visualOod
        await renderCities(
          [
            { city: nyc.city, seed: nyc.seed, splits },
            { city: sf.city, seed: sf.seed, splits: [{ dir: at.visualOod, routes: sf.routes }] }
          ],
          options
        )
      }),
    catch: (e) => (e instanceof DatasetError ? e : new DatasetError({ path: paths.root, message: `cannot build the default datasets: ${String(e)}` }))
  }).pipe(Effect.as(paths))
}

/** A synthetic city of its own (a suite's): style, layout seed, routes, and how many routes before them are drawn and left out. */
export interface CityRecipe {
  readonly city: string
  readonly seed: number
  readonly routes: number
  readonly after: number
}

export const cityDir = (c: CityRecipe, root = cacheRoot()): string =>
  path.join(root, `city-r${RECIPE_VERSION}-${c.city.replace(/[^A-Za-z0-9.]+/g, "_")}-s${c.seed}-a${c.after}-n${c.routes}`, "routes")

/** The city, generated into the cache on first use (see `buildOnce`); returns its folder. */
export const ensureCity = (c: CityRecipe, options: Progress = {}): Effect.Effect<string, DatasetError> => {
  const dir = cityDir(c)
  const root = path.dirname(dir)
  return Effect.tryPromise({
    try: () =>
      buildOnce(root, MARKER, JSON.stringify({ recipe: RECIPE_VERSION, city: c }, null, 2), async (staging) => {
        options.log?.(`generating the city ${c.city} (seed ${c.seed}, ${c.routes} routes after the first ${c.after}) into ${root} (once)`)
        const held = c.after > 0 ? [{ dir: path.join(staging, "left-out"), routes: c.after, write: false }] : []
        await renderCities([{ city: c.city, seed: c.seed, splits: [...held, { dir: path.join(staging, "routes"), routes: c.routes }] }], options)
      }),
    catch: (e) => (e instanceof DatasetError ? e : new DatasetError({ path: root, message: `cannot build the city ${c.city}: ${String(e)}` }))
  }).pipe(Effect.as(dir))
}

/**
 * The broad mixture a base model is pretrained on: `styles` cities, each in its own style drawn
 * from a style seed (`varied:N`, never the held-out nyc or sf look), `routes` routes each.
 */
export interface MixtureRecipe {
  readonly styles: number
  readonly routes: number
  /** Style seeds are firstStyle, firstStyle + 1, ... */
  readonly firstStyle: number
}

/**
 * The mixture's panoramas are half the default size: the policy sees 96-pixel views shrunk to 32
 * (a 90° view of a 512-wide panorama is 128 pixels, still more than it keeps), and small cities
 * of few routes cost many panoramas per route.
 */
export const MIXTURE_PANORAMA = { width: 512, height: 256 } as const

export const mixturePaths = (m: MixtureRecipe, root = cacheRoot()): { readonly root: string; readonly dirs: string[] } => {
  const dir = path.join(root, `mixture-r${RECIPE_VERSION}-${m.styles}x${m.routes}-s${m.firstStyle}-${MIXTURE_PANORAMA.width}`)
  return { root: dir, dirs: Array.from({ length: m.styles }, (_, k) => path.join(dir, `varied-${m.firstStyle + k}`)) }
}

export const ensureMixture = (m: MixtureRecipe, options: Progress = {}): Effect.Effect<string[], DatasetError> => {
  const paths = mixturePaths(m)
  return Effect.tryPromise({
    try: () =>
      buildOnce(paths.root, MARKER, JSON.stringify({ recipe: RECIPE_VERSION, mixture: m }, null, 2), async (staging) => {
        options.log?.(`generating the pretraining mixture (${m.styles} city styles × ${m.routes} routes) into ${paths.root} (once)`)
        const seeds = Array.from({ length: m.styles }, (_, k) => m.firstStyle + k)
        await renderCities(
          seeds.map((seed) => ({
            city: `${VARIED_PREFIX}${seed}`,
            seed,
            splits: [{ dir: path.join(staging, `varied-${seed}`), routes: m.routes }],
            panorama: MIXTURE_PANORAMA
          })),
          options
        )
      }),
    catch: (e) => (e instanceof DatasetError ? e : new DatasetError({ path: paths.root, message: `cannot build the pretraining mixture: ${String(e)}` }))
  }).pipe(Effect.as(paths.dirs))
}
