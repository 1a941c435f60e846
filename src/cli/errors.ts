import { Console, Effect } from "effect"

/**
 * Prints an error on stderr and sets the process's exit code to 1, without a stack trace. It
 * succeeds: a command returns after it, so that what the command finished stays finished.
 */
export const printError = (message: string) =>
  Effect.sync(() => {
    process.exitCode = 1
  }).pipe(Effect.zipRight(Console.error(message)))

/** Any failure of a command, printed as `error: ...` (tagged errors say which file, field or flag). */
export const reportError = (e: unknown) => printError(`error: ${String(e)}`)
