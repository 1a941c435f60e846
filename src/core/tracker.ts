import { Context, Effect } from "effect"

/**
 * Where a run's numbers go as they happen. The JSONL tracker always writes them to the run
 * folder (the source of truth); others (TensorBoard event files, Weights & Biases live) are views
 * of the same records and must never block or fail a run.
 *
 * A record says what it is and whose it is: `kind` — "train" (one update or epoch of a phase:
 * `phase`, `update` or `epoch`, losses, rewards, ...), "eval" (a suite at a point: `suite`,
 * `step`, `samples`, accuracies) or "kl" —, and `arm` and `seed` (a training phase's records get
 * them from the run that trains the arm, see `tagged`). Other numeric fields are its metrics.
 */
export interface TrackerService {
  readonly log: (record: Readonly<Record<string, unknown>>) => Effect.Effect<void>
  readonly summary: (record: Readonly<Record<string, unknown>>) => Effect.Effect<void>
  /** Flush what is pending (end of a run); bounded in time. */
  readonly close: Effect.Effect<void>
}

export class Tracker extends Context.Tag("virl/Tracker")<Tracker, TrackerService>() {}

/** Every record to each tracker, in order; none may fail the run. */
export const combine = (...trackers: ReadonlyArray<TrackerService>): TrackerService => ({
  log: (r) => Effect.forEach(trackers, (t) => t.log(r), { discard: true }),
  summary: (r) => Effect.forEach(trackers, (t) => t.summary(r), { discard: true }),
  close: Effect.forEach(trackers, (t) => t.close, { discard: true })
})

/** The same tracker with `tags` (e.g. the arm and seed being trained) on every record it logs. */
export const tagged = (tracker: TrackerService, tags: Readonly<Record<string, unknown>>): TrackerService => ({
  ...tracker,
  log: (r) => tracker.log({ ...tags, ...r })
})

/** Logs to the run's Tracker if the context has one (library callers may train without). */
export const track = (record: Readonly<Record<string, unknown>>): Effect.Effect<void> =>
  Effect.flatMap(Effect.serviceOption(Tracker), (t) => (t._tag === "Some" ? t.value.log(record) : Effect.void))

/** What of a record is not a metric. */
const IDENTIFIERS = new Set(["kind", "arm", "seed", "phase", "suite", "step", "total", "update", "epoch", "samples", "time", "reference", "inputs"])

/**
 * A record's metrics as the live views name them — training as `<phase>/<metric>` stepped by the
 * update (or epoch), evaluations as `eval/<suite>/<metric>` and KL as `kl/<part>` stepped by the
 * arm's training samples — and that step.
 */
export const metricsOf = (record: Readonly<Record<string, unknown>>): { readonly step: number; readonly scalars: Array<[string, number]> } => {
  const kind = String(record["kind"] ?? "train")
  const prefix = kind === "eval" ? `eval/${String(record["suite"])}/` : kind === "kl" ? "kl/" : `${String(record["phase"] ?? "train")}/`
  const step = kind === "train" ? Number(record["update"] ?? record["epoch"] ?? 0) : Number(record["samples"] ?? record["step"] ?? 0)
  const scalars = Object.entries(record)
    .filter(([k, v]) => !IDENTIFIERS.has(k) && typeof v === "number" && Number.isFinite(v))
    .map(([k, v]) => [`${prefix}${kind === "kl" ? (k === "kl" ? "total" : k.replace(/^kl_/, "")) : k}`, v as number] as [string, number])
  if (kind === "train" && typeof record["samples"] === "number") scalars.push([`${prefix}samples`, record["samples"]])
  return { step: Number.isFinite(step) ? step : 0, scalars }
}
