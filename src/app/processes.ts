import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const BIN = path.resolve(import.meta.dirname, "../../bin/virl.mjs")

/** The exit code of a child that stopped because its parent fell silent (EX_TEMPFAIL): it can go on from its checkpoints. */
export const PARENT_SILENT_EXIT = 75

/**
 * Runs `virl ARGS…` as a child process with its output appended to `log`; returns its exit code.
 * The child stops with its parent: when the parent is interrupted (SIGTERM, then SIGKILL after
 * 5 s) and when the parent dies without a word (it watches its stdin, a pipe from the parent).
 * With `silence` (seconds), the parent sends a byte every second on that pipe and the child also
 * stops when none came for that long: a parent stopped (SIGSTOP, a frozen machine) holds the pipe
 * open without a word, and a cluster runner's trial must not go on writing while another runner
 * takes it over.
 */
export const runVirlProcess = (args: ReadonlyArray<string>, log: string, options: { readonly silence?: number } = {}) =>
  Effect.async<number>((resume) => {
    fs.mkdirSync(path.dirname(log), { recursive: true })
    const logFile = fs.openSync(log, "a")
    // (not inherited: a trial's own seed processes hear no heartbeat from it)
    const { VIRL_PARENT_SILENCE_S: _inherited, ...parentEnv } = process.env
    const env = { ...parentEnv, VIRL_EXIT_WITH_PARENT: "1", ...(options.silence === undefined ? {} : { VIRL_PARENT_SILENCE_S: String(options.silence) }) }
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["pipe", logFile, logFile], env })
    child.stdin?.on("error", () => {})
    const beat = options.silence === undefined ? undefined : setInterval(() => child.stdin?.write("\n"), 1000)
    child.on("exit", (code) => {
      if (beat !== undefined) clearInterval(beat)
      fs.closeSync(logFile)
      resume(Effect.succeed(code ?? 1))
    })
    return Effect.async<void>((done) => {
      if (child.exitCode !== null || child.signalCode !== null) return done(Effect.void)
      const force = setTimeout(() => child.kill("SIGKILL"), 5000)
      child.once("exit", () => {
        clearTimeout(force)
        done(Effect.void)
      })
      child.kill("SIGTERM")
    })
  })

/** The last lines of a log file, for an error message. */
export const fileTail = (file: string, lines = 5): string => {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n")
  } catch {
    return `(no ${path.basename(file)})`
  }
}
