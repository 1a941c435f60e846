import type { Progress } from "../app/train.ts"

/** Seconds as `1h02m`, `3m05s` or `42s`. */
export const duration = (seconds: number): string => {
  if (!Number.isFinite(seconds) || seconds < 0) return "?"
  const s = Math.round(seconds)
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
  return `${s}s`
}

/** The wall clock as `HH:MM:SS` (UTC), the stamp of every line written where no terminal redraws them. */
const stamp = (now: Date): string => now.toISOString().slice(11, 19)

/** How often a bar writes a line when stderr is not a terminal (a log file, a pipe, a batch scheduler's log). */
const LOG_EVERY_MS = 30_000

export interface BarOptions {
  /** Whether lines are redrawn in place (default: stderr is a terminal). */
  readonly tty?: boolean
  readonly write?: (text: string) => void
  readonly now?: () => number
}

/**
 * A progress bar on stderr with elapsed time, rate and an estimate of the time left. On a
 * terminal it is redrawn in place; elsewhere it writes a timestamped line when it starts, at
 * least every 30 seconds while it moves, and when it ends.
 */
export const progressBar = (label: string, options: BarOptions = {}) => {
  const tty = options.tty ?? process.stderr.isTTY === true
  const write = options.write ?? ((text: string) => void process.stderr.write(text))
  const now = options.now ?? (() => Date.now())
  const t0 = now()
  let lastPercent = -1
  let lastLogged = Number.NEGATIVE_INFINITY
  return (done: number, total: number): void => {
    const t = now()
    const percent = total === 0 ? 100 : Math.floor((done / total) * 100)
    const finished = done >= total
    const due = !tty && (t - lastLogged >= LOG_EVERY_MS || finished)
    if (tty ? percent === lastPercent && !finished : !due) return
    lastPercent = percent
    const elapsed = (t - t0) / 1000
    const rate = elapsed > 0 ? done / elapsed : 0
    const left = rate > 0 ? (total - done) / rate : Number.NaN
    const width = 30
    const filled = Math.round((Math.min(100, percent) / 100) * width)
    const timing = finished
      ? `${duration(elapsed)}${rate > 0 ? `, ${rate >= 10 ? rate.toFixed(0) : rate.toFixed(2)}/s` : ""}`
      : `${duration(elapsed)} elapsed${done > 0 ? `, ${rate >= 10 ? rate.toFixed(0) : rate.toFixed(2)}/s, ${duration(left)} left` : ""}`
    const line = `${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total} ${timing}`
    if (tty) write(`\r${line}\x1b[K${finished ? "\n" : ""}`)
    else {
      lastLogged = t
      write(`${stamp(new Date(t))} ${line}\n`)
    }
  }
}

/** Progress of long work on stderr: bars, and lines of what is happening (timestamped where no terminal shows them). */
export const cliProgress: Progress = {
  bar: (label) => progressBar(label),
  log: (line) => process.stderr.write(process.stderr.isTTY === true ? `${line}\n` : `${stamp(new Date())} ${line}\n`)
}
