import * as fs from "node:fs"
import * as path from "node:path"
import { EXPERIMENT_FILE } from "../run-folder.ts"
import { FRAMES_DIR, TRACE_FORMAT, type TraceEpisode } from "../traces.ts"

/**
 * What `virl view` shows of a run folder, read from disk: the table, the plots, and an index of
 * every traced evaluation episode; the episodes themselves per evaluation log, on demand. Anything
 * missing or unreadable becomes a line in `problems`, never an exception: the page says it.
 */
export interface ViewIndex {
  readonly name: string
  readonly dir: string
  readonly problems: ReadonlyArray<string>
  /** results.md, as blocks: tables (rows of cells) and lines of text. */
  readonly results: ReadonlyArray<{ readonly table: ReadonlyArray<ReadonlyArray<string>> } | { readonly text: string } | { readonly heading: string }>
  readonly plots: ReadonlyArray<string>
  readonly logs: ReadonlyArray<LogEntry>
  readonly episodes: ReadonlyArray<EpisodeEntry>
}

export interface LogEntry {
  readonly key: string
  readonly seed: number
  readonly arm: string
  readonly suite: string
  readonly step: number
  /** The arm's last evaluation point. */
  readonly final: boolean
}

export interface EpisodeEntry {
  readonly log: string
  readonly index: number
  readonly episode: number
  readonly route: number | null
  readonly success: boolean
  readonly reward: number
  readonly steps: number
  /** The class of the first answer the environment refused ("" on a clean success). */
  readonly failure: string
}

const LOG_NAME = /^(.+)-step(\d+)\.episodes\.jsonl$/
const PLAIN_LOG = /^(.+)-step(\d+)\.jsonl$/

/** A key that names one evaluation log in URLs and file names: `seed-1__rl__indist-step4`. */
export const logKey = (seed: number, arm: string, suite: string, step: number): string =>
  `seed-${seed}__${arm}__${suite}-step${step}`.replace(/[^A-Za-z0-9_.-]/g, "_")

const readJsonFile = (file: string, problems: string[]): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>
  } catch (e) {
    problems.push(`${path.basename(file)} cannot be read: ${(e as Error).message}`)
    return undefined
  }
}

/** Markdown as the report writes it: pipe tables and lines of text. */
const markdownBlocks = (text: string): ViewIndex["results"] => {
  const blocks: Array<{ table: string[][] } | { text: string } | { heading: string }> = []
  let table: string[][] | undefined
  for (const line of text.split("\n")) {
    if (line.trim().startsWith("|")) {
      const cells = line.trim().replace(/^\||\|$/g, "").split("|").map((c) => c.trim())
      if (cells.every((c) => /^:?-+:?$/.test(c))) continue
      if (table === undefined) blocks.push({ table: (table = []) })
      table.push(cells)
    } else {
      table = undefined
      const heading = /^#+\s*(.*)$/.exec(line.trim())
      if (heading !== null) blocks.push({ heading: heading[1]! })
      else if (line.trim() !== "") blocks.push({ text: line.trim() })
    }
  }
  return blocks
}

const dirs = (dir: string): string[] => {
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort()
  } catch {
    return []
  }
}

/** The lines of a traces file that parse and carry the format; the others counted into problems. */
export const readEpisodes = (file: string, problems: string[] = []): TraceEpisode[] => {
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch (e) {
    problems.push(`${file}: ${(e as Error).message}`)
    return []
  }
  const out: TraceEpisode[] = []
  let bad = 0
  let other = 0
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue
    try {
      const e = JSON.parse(line) as TraceEpisode
      if (e.format !== TRACE_FORMAT.format) bad++
      else if (e.version !== TRACE_FORMAT.version) other++
      else out.push(e)
    } catch {
      bad++
    }
  }
  if (bad > 0) problems.push(`${file}: ${bad} damaged line(s) skipped`)
  if (other > 0) problems.push(`${file}: ${other} episode(s) written by another version of virl (format version ≠ ${TRACE_FORMAT.version}) skipped`)
  return out
}

export const readIndex = (runDir: string): ViewIndex => {
  const problems: string[] = []
  const dir = path.resolve(runDir)
  const exists = fs.existsSync(dir)
  if (!exists) problems.push(`the run folder ${dir} does not exist`)
  const experiment = exists && fs.existsSync(path.join(dir, EXPERIMENT_FILE)) ? readJsonFile(path.join(dir, EXPERIMENT_FILE), problems) : undefined
  if (exists && experiment === undefined && !problems.some((p) => p.startsWith("experiment.json"))) {
    problems.push("experiment.json is missing: not a finished `virl run` folder (it is written with the report at the end)")
  }
  const name = typeof experiment?.["name"] === "string" ? (experiment["name"] as string) : path.basename(dir)
  let results: ViewIndex["results"] = []
  if (fs.existsSync(path.join(dir, "results.md"))) results = markdownBlocks(fs.readFileSync(path.join(dir, "results.md"), "utf8"))
  else if (exists) {
    problems.push(
      "results.md is missing: the run has not finished or was interrupted (re-run the same `virl run` command to resume; `virl report` rewrites the table)"
    )
  }
  const plotsDir = path.join(dir, "plots")
  // each figure's SVG (the PNG of a run folder written before figures had one)
  const files = fs.existsSync(plotsDir) ? fs.readdirSync(plotsDir) : []
  const plots = files
    .filter((f) => f.endsWith(".svg") || (f.endsWith(".png") && !files.includes(`${f.slice(0, -4)}.svg`)))
    .sort()
    .map((f) => `plots/${f}`)
  if (exists && plots.length === 0) problems.push("plots/ is missing or empty")

  const logs: LogEntry[] = []
  const episodes: EpisodeEntry[] = []
  let untraced = 0
  for (const seedDir of dirs(dir).filter((d) => /^seed-\d+$/.test(d))) {
    const seed = Number(seedDir.slice(5))
    for (const arm of dirs(path.join(dir, seedDir))) {
      const logDir = path.join(dir, seedDir, arm, "eval-logs")
      if (!fs.existsSync(logDir)) continue
      const files = fs.readdirSync(logDir)
      const traced = files.flatMap((f) => {
        const m = LOG_NAME.exec(f)
        return m === null ? [] : [{ file: f, suite: m[1]!, step: Number(m[2]) }]
      })
      untraced += files.filter((f) => PLAIN_LOG.test(f) && !f.endsWith(".episodes.jsonl") && !files.includes(f.replace(/\.jsonl$/, ".episodes.jsonl"))).length
      const last = Math.max(0, ...traced.map((t) => t.step))
      for (const t of traced.sort((a, b) => a.suite.localeCompare(b.suite) || a.step - b.step)) {
        const key = logKey(seed, arm, t.suite, t.step)
        logs.push({ key, seed, arm, suite: t.suite, step: t.step, final: t.step === last })
        readEpisodes(path.join(logDir, t.file), problems).forEach((e, index) =>
          episodes.push({
            log: key,
            index,
            episode: e.episode,
            route: e.route_index,
            success: e.success,
            reward: e.reward,
            steps: e.steps.length,
            failure: e.failure?.class ?? (e.success ? "" : "NO_STOP")
          })
        )
      }
    }
  }
  if (untraced > 0) {
    problems.push(
      `${untraced} evaluation log(s) have no episode traces (written before virl kept them): their numbers are in the table, their episodes cannot be shown here`
    )
  }
  if (exists && logs.length === 0 && untraced === 0) problems.push("no evaluation logs yet (seed-*/<arm>/eval-logs/)")
  return { name, dir, problems, results, plots, logs, episodes }
}

/** The episodes of one log of the index, with frame paths checked (a missing frame becomes null). */
export const readLog = (runDir: string, index: ViewIndex, key: string): TraceEpisode[] | undefined => {
  const log = index.logs.find((l) => l.key === key)
  if (log === undefined) return undefined
  const file = path.join(runDir, `seed-${log.seed}`, log.arm, "eval-logs", `${log.suite}-step${log.step}.episodes.jsonl`)
  return readEpisodes(file).map((e) => ({
    ...e,
    steps: e.steps.map((
      s
    ) => (s.frame !== null && (!s.frame.startsWith(`${FRAMES_DIR}/`) || !fs.existsSync(path.join(runDir, s.frame))) ? { ...s, frame: null } : s))
  }))
}

/** The bundle as a script (it loads from file:// as well as over HTTP). */
export const indexScript = (index: ViewIndex): string => `window.VIRL_INDEX = ${safeJson(index)};\n`
export const logScript = (key: string, episodes: ReadonlyArray<TraceEpisode>): string => `window.VIRL_LOADED(${safeJson(key)}, ${safeJson(episodes)});\n`

/** JSON that cannot close a <script> element or start a comment, whatever a model wrote. */
const safeJson = (value: unknown): string =>
  JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029")
