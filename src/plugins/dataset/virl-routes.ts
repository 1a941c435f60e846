import { Effect, Either, Layer, ParseResult, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { NameRegistry, Parser } from "pickleparser"
import sharp from "sharp"
import { sharedBuffer } from "../../core/shared-memory.ts"
import { Dataset, DatasetError, type Panorama, type PanoramaMatch, Route, type RouteDataset, type RowSpan } from "../../core/dataset.ts"
import { PanoramaIndex } from "./panorama-index.ts"

export const ROUTES_FILE = "route_infos.json"
export const MAPPING_FILE = "gps_pano_mapping.pkl"
export const STREET_VIEWS_DIR = "street_views"

const issueText = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") + ": " : ""}${issue.message}`)
    .join("; ")

/** Every route decoded, or one error per route that is not of the expected shape. */
export const decodeRoutes = (
  file: string,
  json: unknown
): { readonly routes: Route[]; readonly indices: number[]; readonly errors: DatasetError[] } => {
  if (!Array.isArray(json) || json.length < 1 || !Array.isArray(json[0])) {
    return {
      routes: [],
      indices: [],
      errors: [new DatasetError({ path: file, message: "expected a JSON array [routes, route_count]" })]
    }
  }
  const routes: Route[] = []
  const indices: number[] = []
  const errors: DatasetError[] = []
  const decode = Schema.decodeUnknownEither(Route)
  ;(json[0] as unknown[]).forEach((raw, index) => {
    const result = decode(raw)
    if (Either.isRight(result)) {
      routes.push(result.right)
      indices.push(index)
    } else errors.push(new DatasetError({ path: file, field: `route ${index}`, message: issueText(result.left) }))
  })
  if (json.length > 1 && json[1] !== (json[0] as unknown[]).length) {
    errors.push(
      new DatasetError({
        path: file,
        field: "route_count",
        message: `says ${JSON.stringify(json[1])} but the file holds ${(json[0] as unknown[]).length} routes`
      })
    )
  }
  return { routes, indices, errors }
}

export const readRoutes = (file: string): Effect.Effect<Route[], DatasetError> =>
  Effect.try({
    try: () => JSON.parse(fs.readFileSync(file, "utf8")) as unknown,
    catch: (e) => new DatasetError({ path: file, message: `cannot read JSON: ${(e as Error).message}` })
  }).pipe(
    Effect.flatMap((json) => {
      const { routes, errors } = decodeRoutes(file, json)
      return errors.length === 0 ? Effect.succeed(routes) : Effect.fail(errors[0])
    })
  )

/** numpy's dtype as a pickle rebuilds it: only its type code matters here ("f8", "<f4", "i8", ...). */
class NumpyDtype {
  constructor(readonly code: string) {}
  __setstate__(): void {}
}

/** A numpy scalar (`numpy.float64(40.7)` as a dict key) from its dtype and raw little-endian bytes. */
const numpyScalar = (dtype: unknown, raw: unknown): number => {
  if (!(dtype instanceof NumpyDtype)) throw new Error("a numpy scalar without a dtype")
  const bytes = raw instanceof Uint8Array ? raw : typeof raw === "string" ? Uint8Array.from(raw, (c) => c.charCodeAt(0)) : undefined
  if (bytes === undefined) throw new Error(`numpy scalar of ${dtype.code}: its bytes are missing`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const code = dtype.code.replace(/^[<=|]/, "")
  if (dtype.code.startsWith(">")) throw new Error(`big-endian numpy scalar (${dtype.code}) is not supported`)
  if (code === "f8" && bytes.length === 8) return view.getFloat64(0, true)
  if (code === "f4" && bytes.length === 4) return view.getFloat32(0, true)
  if (code === "i8" && bytes.length === 8) return Number(view.getBigInt64(0, true))
  if (code === "i4" && bytes.length === 4) return view.getInt32(0, true)
  throw new Error(`numpy scalar of dtype ${dtype.code} is not a supported number type`)
}

/** Names a dataset's pickle may use beyond Python's own types: numpy float scalars (numpy 1 and 2). */
const pickleNames = () =>
  new NameRegistry()
    .register("numpy", "dtype", (code: string) => new NumpyDtype(code))
    .register("numpy.core.multiarray", "scalar", numpyScalar)
    .register("numpy._core.multiarray", "scalar", numpyScalar)
    // protocol 2 pickles bytes as _codecs.encode(latin-1 text, "latin1")
    .register("_codecs", "encode", (text: string, encoding: string) => {
      if (encoding !== "latin1" && encoding !== "latin-1") throw new Error(`_codecs.encode with ${encoding}`)
      return Uint8Array.from(text, (c) => c.charCodeAt(0))
    })

/**
 * gps_pano_mapping.pkl: a pickled dict from (lat, lng) tuples to panorama ids. The coordinates may
 * be Python floats or numpy float64 scalars (as a dataset built with numpy writes them).
 */
export const readMapping = (file: string): Effect.Effect<PanoramaMatch[], DatasetError> =>
  Effect.try({
    try: () => {
      const parsed = new Parser({ unpicklingTypeOfDictionary: "Map", nameResolver: pickleNames() }).parse<unknown>(fs.readFileSync(file))
      if (!(parsed instanceof Map)) throw new Error("the pickle does not hold a dict")
      const entries: PanoramaMatch[] = []
      for (const [key, value] of parsed) {
        if (!Array.isArray(key) || key.length !== 2 || typeof key[0] !== "number" || typeof key[1] !== "number") {
          throw new Error(`key ${JSON.stringify(key)} is not a (lat, lng) tuple of floats`)
        }
        if (typeof value !== "string") throw new Error(`value for ${JSON.stringify(key)} is not a panorama id string`)
        entries.push({ geocode: [key[0], key[1]], panoId: value })
      }
      return entries
    },
    catch: (e) => new DatasetError({ path: file, message: `unreadable pickle: ${(e as Error).message}` })
  })

export const readRotation = (file: string): Effect.Effect<number, DatasetError> =>
  Effect.try({
    try: () => JSON.parse(fs.readFileSync(file, "utf8")) as unknown,
    catch: (e) => new DatasetError({ path: file, message: `cannot read metadata: ${(e as Error).message}` })
  }).pipe(
    Effect.flatMap((meta) =>
      typeof meta === "object" && meta !== null && typeof (meta as { rotation?: unknown }).rotation === "number"
        ? Effect.succeed((meta as { rotation: number }).rotation)
        : Effect.fail(new DatasetError({ path: file, field: "rotation", message: "missing or not a number" }))
    )
  )

/**
 * A JPEG's size from its frame header (SOFn), without decoding it; undefined for anything else
 * (which is then decoded whole).
 */
export const jpegSize = (bytes: Uint8Array): { readonly width: number; readonly height: number } | undefined => {
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined
  let i = 2
  while (i + 9 < bytes.length) {
    if (bytes[i] !== 0xff) return undefined
    const marker = bytes[i + 1]
    // fill bytes before a marker
    if (marker === 0xff) {
      i++
      continue
    }
    const length = (bytes[i + 2] << 8) | bytes[i + 3]
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC)
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: (bytes[i + 5] << 8) | bytes[i + 6], width: (bytes[i + 7] << 8) | bytes[i + 8] }
    }
    // the image data starts before any frame header: not a JPEG we can size
    if (marker === 0xda) return undefined
    i += 2 + length
  }
  return undefined
}

/**
 * A panorama decoded to packed RGB in a shared buffer of its full size; with `span`, only the
 * rows it names (the decoder stops after the last and converts only those; pixel for pixel the
 * same as a whole decode), the others left zero.
 */
export const decodePanorama = (
  file: string,
  span?: RowSpan
): Effect.Effect<{ width: number; height: number; rgb: Uint8Array; rows?: { first: number; last: number } }, DatasetError> =>
  Effect.tryPromise({
    try: async () => {
      const bytes = await fs.promises.readFile(file)
      const size = span === undefined ? undefined : jpegSize(bytes)
      const rows = size === undefined ? undefined : span!.rows(size.width, size.height)
      const image = () => {
        const s = sharp(bytes, { sequentialRead: true })
        return rows === undefined ? s : s.extract({ left: 0, top: rows.first, width: size!.width, height: rows.last - rows.first + 1 })
      }
      // a 3-channel JPEG is sRGB already (as OpenCV reads it); anything else is converted
      let { data, info } = await image().raw().toBuffer({ resolveWithObject: true })
      if (info.channels !== 3) ({ data, info } = await image().removeAlpha().toColourspace("srgb").raw().toBuffer({ resolveWithObject: true }))
      if (info.channels !== 3) throw new Error(`expected 3 channels, got ${info.channels}`)
      const width = info.width
      const height = rows === undefined ? info.height : size!.height
      // shared memory, so that tile workers read the pixels without a copy of their own
      const rgb = new Uint8Array(sharedBuffer(width * height * 3))
      rgb.set(data, rows === undefined ? 0 : rows.first * width * 3)
      return rows === undefined ? { width, height, rgb } : { width, height, rgb, rows: { first: rows.first, last: rows.last } }
    },
    catch: (e) =>
      new DatasetError({
        path: file,
        message: fs.existsSync(file) ? `cannot decode image: ${(e as Error).message}` : "missing panorama image"
      })
  })

export interface LoadOptions {
  /** Decoded panoramas kept in memory (routes and retries revisit them). */
  readonly panoramaCacheSize?: number
}

/** A dataset folder in SFTvsRL_Data's VIRL_routes/<city>/ layout. */
export const load = (root: string, options: LoadOptions = {}): Effect.Effect<RouteDataset, DatasetError> =>
  Effect.gen(function*() {
    if (!fs.existsSync(root)) return yield* new DatasetError({ path: root, message: "dataset folder not found" })
    const routes = yield* readRoutes(path.join(root, ROUTES_FILE))
    const index = new PanoramaIndex(yield* readMapping(path.join(root, MAPPING_FILE)))
    const streetViews = path.join(root, STREET_VIEWS_DIR)
    const capacity = options.panoramaCacheSize ?? 64
    // by panorama id, and id + span key for panoramas decoded in part (a whole one serves any span)
    const cache = new Map<string, Effect.Effect<Panorama, DatasetError>>()
    const lookup = (key: string) => {
      const hit = cache.get(key)
      if (hit !== undefined) {
        cache.delete(key)
        cache.set(key, hit)
      }
      return hit
    }
    const panorama = (panoId: string, span?: RowSpan): Effect.Effect<Panorama, DatasetError> => {
      const key = span === undefined ? panoId : `${panoId}|${span.key}`
      const hit = lookup(key) ?? (span === undefined ? undefined : lookup(panoId))
      if (hit !== undefined) return hit
      const decoded = Effect.all([
        decodePanorama(path.join(streetViews, `${panoId}.jpg`), span),
        readRotation(path.join(streetViews, `${panoId}.metadata.json`))
      ]).pipe(Effect.map(([image, rotation]): Panorama => ({ panoId, rotation, ...image })))
      return Effect.cached(decoded).pipe(
        Effect.flatMap((memo) =>
          Effect.sync(() => {
            cache.set(key, memo)
            if (cache.size > capacity) cache.delete(cache.keys().next().value as string)
            return memo
          })
        ),
        Effect.flatten,
        Effect.tapError(() => Effect.sync(() => cache.delete(key)))
      )
    }
    return {
      root,
      routes,
      exactPanorama: (geocode) => index.lookup(geocode),
      nearestPanorama: (geocode, radius) => index.nearest(geocode, radius),
      panorama
    } satisfies RouteDataset
  })

export const layer = (root: string, options?: LoadOptions): Layer.Layer<Dataset, DatasetError> => Layer.effect(Dataset, load(root, options))
