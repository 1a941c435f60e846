import { Console, Effect } from "effect"

/** Prints an error on stderr and makes the process exit non-zero, without a stack trace. */
export const fail = (message: string) =>
  Effect.sync(() => {
    process.exitCode = 1
  }).pipe(Effect.zipRight(Console.error(message)))
