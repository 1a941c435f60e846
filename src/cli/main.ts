import { Args, Command, Options } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { runConformance } from "../conformance/run.ts"
import { checkDataset } from "../plugins/dataset/check.ts"
import { progressBar } from "./progress.ts"

const fail = (message: string) =>
  Effect.sync(() => {
    process.exitCode = 1
  }).pipe(Effect.zipRight(Console.error(message)))

const conformance = Command.make(
  "conformance",
  { dir: Args.directory({ name: "DIR", exists: "yes" }), verbose: Options.boolean("verbose").pipe(Options.withAlias("v")) },
  ({ dir, verbose }) =>
    Effect.gen(function* () {
      const results = yield* runConformance(dir, (r) => {
        if (!r.ok) console.log(`FAIL ${r.file}[${r.index}] (${r.label}): ${r.detail}`)
        else if (verbose) console.log(`ok   ${r.file}[${r.index}] (${r.label})`)
      })
      const failed = results.filter((r) => !r.ok).length
      console.log(`${results.length - failed} passed, ${failed} failed`)
      if (failed > 0 || results.length === 0) process.exitCode = 1
    }).pipe(Effect.catchAll((e) => fail(`conformance: ${e.message}`)))
).pipe(Command.withDescription("Replay a folder of reference cases (cases/ beside dataset/) and report N passed, M failed."))

const check = Command.make(
  "check",
  {
    dir: Args.directory({ name: "DIR" }),
    deep: Options.boolean("deep").pipe(Options.withDescription("decode every panorama fully, not only its header")),
    radius: Options.float("mapping-radius").pipe(Options.withDefault(20), Options.withDescription("MAPPING_RADIUS in metres"))
  },
  ({ dir, deep, radius }) =>
    Effect.gen(function* () {
      const report = yield* checkDataset(dir, { deep, mappingRadius: radius, onProgress: progressBar("checking panoramas") })
      for (const problem of report.problems) console.log(`problem: ${problem.toString()}`)
      console.log(`${dir}: ${report.routes} routes, ${report.panoramas} panoramas, ${report.problems.length} problems`)
      if (report.problems.length > 0) process.exitCode = 1
    })
).pipe(Command.withDescription("Validate a dataset in the VIRL_routes layout; report every problem with its file and field."))

const data = Command.make("data").pipe(Command.withSubcommands([check]), Command.withDescription("Dataset tools."))

const virl = Command.make("virl").pipe(
  Command.withSubcommands([conformance, data]),
  Command.withDescription("Post-train vision-language agents with SFT and RL on V-IRL navigation.")
)

const cli = Command.run(virl, { name: "virl", version: "0.1.0" })

cli(process.argv).pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain)
