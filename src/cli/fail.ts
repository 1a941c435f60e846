import { Console, Effect } from "effect"

/** Prints an error on stderr and makes the process exit non-zero, without a stack trace. */
export const fail = (message: string) =>
  Effect.sync(() => {
    process.exitCode = 1
  }).pipe(Effect.zipRight(Console.error(message)))

/** Any failure of a command, printed as `error: ...` (tagged errors say which file, field or flag). */
export const reportError = (e: unknown) => fail(`error: ${String(e)}`)
