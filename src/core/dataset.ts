import { Context, Data, Effect, Schema } from "effect"

/** A (latitude, longitude) pair in degrees. */
export const Geocode = Schema.Tuple(Schema.Number, Schema.Number)

export const Place = Schema.Struct({
  name: Schema.String,
  geocode: Geocode
})

/** One route of SFTvsRL_Data's `route_infos.json` (spec §2); other fields are ignored. */
export const Route = Schema.Struct({
  start_place: Schema.Struct({ relocated_geocode: Geocode }),
  init_heading: Schema.optional(Schema.Number),
  dest_place: Place,
  route_results: Schema.Struct({
    geocode_list: Schema.Array(Geocode),
    landmark_list: Schema.Array(Schema.NullOr(Place))
  }),
  milestone_info: Schema.String
})
export type Route = typeof Route.Type

/** An equirectangular panorama, decoded to packed RGB. */
export interface Panorama {
  readonly panoId: string
  readonly width: number
  readonly height: number
  readonly rgb: Uint8Array
  /** North offset in degrees, from `{pano_id}.metadata.json`. */
  readonly rotation: number
  /** When only some rows were decoded (a `RowSpan` asked for them): those rows, inclusive; the others are zero. */
  readonly rows?: { readonly first: number; readonly last: number }
}

/**
 * The rows of a panorama a reader needs, as a function of the panorama's size (undefined: all),
 * so that a decoder can skip the rest; `key` names the rule (equal keys give equal rows).
 */
export interface RowSpan {
  readonly key: string
  readonly rows: (width: number, height: number) => { readonly first: number; readonly last: number } | undefined
}

export interface PanoramaMatch {
  readonly geocode: readonly [number, number]
  readonly panoId: string
}

export class DatasetError extends Data.TaggedError("DatasetError")<{
  readonly path: string
  readonly field?: string
  readonly message: string
}> {
  override toString(): string {
    return `${this.path}${this.field === undefined ? "" : ` (${this.field})`}: ${this.message}`
  }
}

/** A city's routes and its street-view store. */
export interface RouteDataset {
  readonly root: string
  readonly routes: ReadonlyArray<Route>
  /** The panorama mapped at exactly this geocode (a key of gps_pano_mapping.pkl). */
  readonly exactPanorama: (geocode: readonly [number, number]) => PanoramaMatch | undefined
  /** The mapped panorama nearest by haversine distance, if closer than `radiusMetres`. */
  readonly nearestPanorama: (geocode: readonly [number, number], radiusMetres: number) => PanoramaMatch | undefined
  /** A panorama decoded (cached); with `span`, possibly only the rows it names. */
  readonly panorama: (panoId: string, span?: RowSpan) => Effect.Effect<Panorama, DatasetError>
}

export class Dataset extends Context.Tag("virl/Dataset")<Dataset, RouteDataset>() {}
