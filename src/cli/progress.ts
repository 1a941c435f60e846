import type { Progress } from "../app/train.ts"

/** A one-line progress bar on stderr, redrawn in place when stderr is a terminal. */
export const progressBar = (label: string) => {
  const tty = process.stderr.isTTY === true
  let last = -1
  return (done: number, total: number): void => {
    const percent = total === 0 ? 100 : Math.floor((done / total) * 100)
    if (percent === last && done !== total) return
    last = percent
    const width = 30
    const filled = Math.round((percent / 100) * width)
    const line = `${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total}`
    if (tty) process.stderr.write(`\r${line}${done === total ? "\n" : ""}`)
    else if (done === total) process.stderr.write(`${line}\n`)
  }
}

/** Progress of long work on stderr: bars, and lines of what is happening. */
export const cliProgress: Progress = { bar: progressBar, log: (line) => process.stderr.write(`${line}\n`) }
