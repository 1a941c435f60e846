import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const BIN = path.resolve(import.meta.dirname, "../../bin/virl.mjs")

/**
 * Runs `virl ARGS…` as a child process with its output appended to `log`; returns its exit code.
 * The child stops with its parent: when the parent is interrupted (SIGTERM, then SIGKILL after
 * 5 s) and when the parent dies without a word (it watches its stdin, a pipe from the parent).
 */
export const runVirlProcess = (args: ReadonlyArray<string>, log: string) =>
  Effect.async<number>((resume) => {
    fs.mkdirSync(path.dirname(log), { recursive: true })
    const logFile = fs.openSync(log, "a")
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["pipe", logFile, logFile], env: { ...process.env, VIRL_EXIT_WITH_PARENT: "1" } })
    child.stdin?.on("error", () => {})
    child.on("exit", (code) => {
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
