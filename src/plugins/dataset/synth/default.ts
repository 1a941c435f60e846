import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DatasetError } from "../../../core/dataset.ts"
import { RECIPE_VERSION, synthesize } from "./generate.ts"

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

export const cacheRoot = (): string => process.env["VIRL_CACHE"] ?? path.join(os.homedir(), ".cache", "virl")

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

/**
 * The default datasets, generated if the cache lacks them or holds another recipe. Built in a
 * staging folder and renamed into place, so an interrupted or concurrent build never leaves a
 * half dataset where a run would read it.
 */
export const ensureDefault = (
  options: { readonly root?: string; readonly onProgress?: (done: number, total: number) => void; readonly log?: (line: string) => void } = {}
): Effect.Effect<DefaultDatasets, DatasetError> =>
  Effect.gen(function* () {
    const paths = defaultPaths(options.root)
    if (isReady(paths)) return paths
    const staging = defaultPaths(`${paths.root}.partial-${process.pid}`)
    yield* Effect.sync(() => {
      fs.rmSync(staging.root, { recursive: true, force: true })
      fs.mkdirSync(staging.root, { recursive: true })
      options.log?.(`generating the default synthetic cities into ${paths.root} (once)`)
    })
    const nyc = DEFAULT_SPLITS.train
    yield* synthesize({
      city: nyc.city,
      seed: nyc.seed,
      splits: [
        { dir: staging.train, routes: nyc.routes },
        { dir: staging.eval, routes: DEFAULT_SPLITS.eval.routes }
      ],
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress })
    })
    const sf = DEFAULT_SPLITS.visualOod
    yield* synthesize({
      city: sf.city,
      seed: sf.seed,
      splits: [{ dir: staging.visualOod, routes: sf.routes }],
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress })
    })
    yield* Effect.try({
      try: () => {
        fs.writeFileSync(path.join(staging.root, MARKER), recipe())
        fs.rmSync(paths.root, { recursive: true, force: true })
        try {
          fs.renameSync(staging.root, paths.root)
        } catch (e) {
          // another process finished first: keep its copy
          if (!isReady(paths)) throw e
          fs.rmSync(staging.root, { recursive: true, force: true })
        }
      },
      catch: (e) => new DatasetError({ path: paths.root, message: `cannot move the generated datasets into place: ${String(e)}` })
    })
    return paths
  })
