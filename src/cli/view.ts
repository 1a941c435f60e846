import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { exportStatic, serve } from "../app/view/server.ts"
import { reportError } from "./errors.ts"

export const view = Command.make(
  "view",
  {
    dir: Args.text({ name: "RUN_DIR" }),
    port: Options.integer("port").pipe(Options.withDefault(8321), Options.withDescription("port to listen on (0: any free port)")),
    host: Options.text("host").pipe(
      Options.withDefault("127.0.0.1"),
      Options.withDescription("address to listen on; the default answers this machine only (0.0.0.0 shows your runs to the network)")
    ),
    out: Options.directory("out").pipe(
      Options.optional,
      Options.withDescription("write the page as static files to DIR instead of serving it (open DIR/index.html)")
    )
  },
  ({ dir, port, host, out }) =>
    Effect.gen(function*() {
      if (!fs.existsSync(dir)) console.error(`warning: ${dir} does not exist; the page will say so`)
      if (Option.isSome(out)) {
        const { index, frames } = yield* exportStatic(dir, out.value)
        console.log(`wrote ${path.join(out.value, "index.html")}: ${index.logs.length} evaluation logs, ${index.episodes.length} episodes, ${frames} frames`)
        for (const p of index.problems) console.log(`  missing: ${p}`)
        return
      }
      if (!Number.isInteger(port) || port < 0 || port > 65535) return yield* reportError(`--port ${port}: must be 0..65535`)
      const server = yield* serve(dir, { port, host })
      const address = server.address()
      const shown = typeof address === "object" && address !== null ? `http://${host.includes(":") ? `[${host}]` : host}:${address.port}/` : String(address)
      console.log(`virl view: ${shown}  (${path.resolve(dir)}; Ctrl-C stops)`)
      yield* Effect.async<void>(() => {
        const stop = () => server.close(() => process.exit(0))
        process.once("SIGINT", stop)
        process.once("SIGTERM", stop)
      })
    }).pipe(Effect.catchAll(reportError))
).pipe(Command.withDescription("Show a run in the browser: the table, the plots and every evaluated episode step by step (or --out DIR: as static files)."))
