import { Data, Effect } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import sharp from "sharp"
import type { EpisodeRecord } from "../core/evaluation.ts"
import { writeFileAtomic } from "../core/files.ts"
import { parseOutput } from "../domain/virl/output-parsing.ts"
import type { PyJson } from "../domain/virl/python-json.ts"

/**
 * Episode traces: what `virl view` shows. Beside each evaluation log (the reference's format,
 * unchanged) an `.episodes.jsonl` holds one episode per line — the rail, and step by step the
 * position, what was asked, the raw answer, how it parsed, the verdict and the reward. The
 * observation grids go to the run's `frames/`, named by their content (the same view under two
 * arms is one file), as JPEGs at most FRAME_WIDTH wide.
 */
export const TRACE_FORMAT = { format: "virl-episodes", version: 1 } as const
export const FRAMES_DIR = "frames"
export const FRAME_WIDTH = 320
const FRAME_QUALITY = 70

export class TraceError extends Data.TaggedError("TraceError")<{ readonly file: string; readonly message: string }> {
  override toString(): string {
    return `${this.file}: ${this.message}`
  }
}

export interface TraceStep {
  readonly rail_index: number | null
  readonly position: readonly [number, number] | null
  readonly heading: number | null
  /** 1-based: the sentence of the instruction being followed at this step. */
  readonly instruction_idx: number
  readonly current_instruction: string
  readonly gt_action: string
  readonly frame: string | null
  readonly output: string
  readonly parsed: { readonly action: string; readonly observation: string; readonly instruction: string }
  readonly verdict: string
  readonly class: string
  readonly reward: number
  readonly feedback: string | null
}

export interface TraceEpisode {
  readonly format: typeof TRACE_FORMAT.format
  readonly version: typeof TRACE_FORMAT.version
  readonly episode: number
  readonly route_index: number | null
  readonly success: boolean
  readonly reward: number
  readonly terminated: boolean
  readonly global_instruction: string
  readonly instructions: ReadonlyArray<string>
  readonly rail: ReadonlyArray<readonly [number, number]>
  /** The first answer the environment did not accept, if any. */
  readonly failure: { readonly step: number; readonly class: string } | null
  readonly steps: ReadonlyArray<TraceStep>
}

const plain = (v: PyJson): unknown => (v instanceof Map ? Object.fromEntries([...v].map(([k, x]) => [k, plain(x)])) : Array.isArray(v) ? v.map(plain) : v)
/** A parsed field as text: strings as they are, anything else (a model may answer 3 or {}) as JSON. */
const asText = (v: unknown): string => (typeof v === "string" ? v : JSON.stringify(plain(v as PyJson)) ?? String(v))
const numberOr = (v: unknown): number | null => (typeof v === "number" ? v : null)
const geocodeOr = (v: unknown): readonly [number, number] | null =>
  Array.isArray(v) && v.length === 2 && typeof v[0] === "number" && typeof v[1] === "number" ? [v[0], v[1]] : null

/** Writes each distinct grid once: `frames/<sha1>.jpg` under `runDir`; returns the relative path. */
const frameWriter = (runDir: string) => {
  const written = new Set<string>()
  return (image: EpisodeRecord["steps"][number]["shown"]["image"]) =>
    Effect.tryPromise({
      try: async () => {
        if (image === null) return null
        const name = `${createHash("sha1").update(image.rgb).digest("hex").slice(0, 20)}.jpg`
        const rel = `${FRAMES_DIR}/${name}`
        const file = path.join(runDir, rel)
        if (written.has(name) || fs.existsSync(file)) {
          written.add(name)
          return rel
        }
        const jpeg = await sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } })
          .resize({ width: Math.min(FRAME_WIDTH, image.width) })
          .jpeg({ quality: FRAME_QUALITY })
          .toBuffer()
        writeFileAtomic(file, jpeg)
        written.add(name)
        return rel
      },
      catch: (e) => new TraceError({ file: path.join(runDir, FRAMES_DIR), message: `cannot write a frame: ${String(e)}` })
    })
}

/**
 * Collects the episodes of one evaluation and writes them (atomically) to `file`; frames into
 * `runDir`/frames when `frames` is on. Use `record` as the suite's record hook, then `finish`.
 */
export const traceWriter = (file: string, runDir: string, frames: boolean) => {
  const lines: string[] = []
  const frame = frameWriter(runDir)
  const record = (e: EpisodeRecord) =>
    Effect.gen(function*() {
      const steps: TraceStep[] = []
      for (const s of e.steps) {
        const parsed = parseOutput(s.output)
        const trace = s.shown.trace ?? {}
        steps.push({
          rail_index: numberOr(trace["rail_index"]),
          position: geocodeOr(trace["geocode"]),
          heading: numberOr(trace["heading"]),
          instruction_idx: numberOr(trace["instruction_index"]) ?? Number(s.shown.info["instruction_idx"] ?? 0),
          current_instruction: asText(s.shown.info["current_instruction"] ?? ""),
          gt_action: asText(s.shown.info["gt_action"] ?? ""),
          frame: frames ? yield* frame(s.shown.image) : null,
          output: s.output,
          parsed: { action: asText(parsed.action), observation: asText(parsed.observation), instruction: asText(parsed.instruction) },
          verdict: s.verdict._tag,
          class: s.verdictClass,
          reward: s.reward,
          feedback: typeof s.after["Verify Info"] === "string" ? (s.after["Verify Info"] as string) : null
        })
      }
      const start = e.start ?? {}
      const firstWrong = steps.findIndex((s) => s.verdict !== "Correct")
      const episode: TraceEpisode = {
        ...TRACE_FORMAT,
        episode: e.episode,
        route_index: numberOr(start["route_index"]),
        success: e.success,
        reward: e.reward,
        terminated: e.terminated,
        global_instruction: asText(e.steps[0]?.shown.info["global_instruction"] ?? ""),
        instructions: Array.isArray(start["instructions"]) ? (start["instructions"] as unknown[]).map(asText) : [],
        rail: Array.isArray(start["rail"])
          ? (start["rail"] as unknown[]).flatMap((g) => {
            const c = geocodeOr(g)
            return c === null ? [] : [c]
          })
          : [],
        failure: firstWrong < 0 ? null : { step: firstWrong, class: steps[firstWrong]!.class },
        steps
      }
      lines[e.episode] = JSON.stringify(episode)
    })
  const finish = Effect.try({
    try: () => writeFileAtomic(file, lines.filter((l) => l !== undefined).join("\n") + "\n"),
    catch: (e) => new TraceError({ file, message: `cannot write: ${String(e)}` })
  })
  return { record, finish }
}
