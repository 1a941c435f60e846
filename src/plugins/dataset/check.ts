import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import sharp from "sharp"
import { DatasetError, type PanoramaMatch, type Route } from "../../core/dataset.ts"
import { buildRail } from "../../domain/virl/rail.ts"
import { PythonRandom } from "../random/python-random.ts"
import { PanoramaIndex } from "./panorama-index.ts"
import { decodeRoutes, MAPPING_FILE, readMapping, readRotation, ROUTES_FILE, STREET_VIEWS_DIR } from "./virl-routes.ts"

export interface CheckOptions {
  /** MAPPING_RADIUS in metres. */
  readonly mappingRadius?: number
  /** Decode every image fully instead of reading its header. */
  readonly deep?: boolean
  readonly onProgress?: (done: number, total: number) => void
}

export interface CheckReport {
  readonly routes: number
  readonly panoramas: number
  readonly problems: ReadonlyArray<DatasetError>
}

const routeProblems = (
  routes: ReadonlyArray<Route>,
  indices: ReadonlyArray<number>,
  index: PanoramaIndex,
  file: string,
  radius: number
): DatasetError[] => {
  const problems: DatasetError[] = []
  const relocate = (g: readonly [number, number], r: number) => index.nearest(g, r)
  routes.forEach((route, i) => {
    const routeIndex = indices[i]
    for (const relocation of [false, true]) {
      try {
        // Headings and draws do not matter here: every check below is independent of them.
        buildRail(
          route,
          routeIndex,
          90,
          { relocation, drop_rate: 0, straight_line_length: 1, mapping_radius: radius, wrap_turns: false },
          new PythonRandom(0),
          relocate
        )
      } catch (e) {
        const error = e as { field?: string; message?: string }
        problems.push(new DatasetError({ path: file, field: `route ${routeIndex}: ${error.field ?? "?"}`, message: error.message ?? String(e) }))
        break
      }
    }
  })
  return problems
}

const imageProblem = async (jpg: string, deep: boolean): Promise<string | undefined> => {
  if (!fs.existsSync(jpg)) return "missing panorama image"
  try {
    const image = sharp(jpg)
    const meta = await image.metadata()
    if (deep) await image.raw().toBuffer()
    if (meta.width === undefined || meta.height === undefined) return "image has no size"
    if (meta.width !== 2 * meta.height) return `not equirectangular: ${meta.width}×${meta.height} (width must be twice the height)`
    return undefined
  } catch (e) {
    return `cannot decode image: ${(e as Error).message}`
  }
}

/** Validates a dataset folder and reports every problem found, each naming its file and field. */
export const checkDataset = (root: string, options: CheckOptions = {}): Effect.Effect<CheckReport> =>
  Effect.gen(function*() {
    const radius = options.mappingRadius ?? 20
    const problems: DatasetError[] = []
    if (!fs.existsSync(root)) {
      return { routes: 0, panoramas: 0, problems: [new DatasetError({ path: root, message: "dataset folder not found" })] }
    }
    const routesFile = path.join(root, ROUTES_FILE)
    let routes: Route[] = []
    let indices: number[] = []
    try {
      const decoded = decodeRoutes(routesFile, JSON.parse(fs.readFileSync(routesFile, "utf8")))
      routes = decoded.routes
      indices = decoded.indices
      problems.push(...decoded.errors)
    } catch (e) {
      problems.push(new DatasetError({ path: routesFile, message: `cannot read JSON: ${(e as Error).message}` }))
    }
    const mapping = yield* Effect.either(readMapping(path.join(root, MAPPING_FILE)))
    const entries: PanoramaMatch[] = Either.isRight(mapping) ? mapping.right : []
    if (Either.isLeft(mapping)) problems.push(mapping.left)
    const index = new PanoramaIndex(entries)
    if (Either.isRight(mapping)) problems.push(...routeProblems(routes, indices, index, routesFile, radius))

    const panoIds = [...new Set(entries.map((e) => e.panoId))]
    const streetViews = path.join(root, STREET_VIEWS_DIR)
    let done = 0
    for (const panoId of panoIds) {
      const jpg = path.join(streetViews, `${panoId}.jpg`)
      const problem = yield* Effect.promise(() => imageProblem(jpg, options.deep ?? false))
      if (problem !== undefined) problems.push(new DatasetError({ path: jpg, message: problem }))
      const rotation = yield* Effect.either(readRotation(path.join(streetViews, `${panoId}.metadata.json`)))
      if (Either.isLeft(rotation)) problems.push(rotation.left)
      options.onProgress?.(++done, panoIds.length)
    }
    return { routes: routes.length, panoramas: panoIds.length, problems }
  })
