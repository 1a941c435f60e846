import { Args, Command, Options, ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Option } from "effect"
import { printError } from "./errors.ts"
import * as os from "node:os"
import * as path from "node:path"
import { DatasetError } from "../core/dataset.ts"
import { runConformance } from "../conformance/run.ts"
import { checkDataset } from "../plugins/dataset/check.ts"
import { cacheRoot, ensureDefault } from "../plugins/dataset/synth/default.ts"
import { fetchSftVsRl, hubToken, SFTVSRL } from "../plugins/dataset/fetch.ts"
import { DEFAULT_PANORAMA, synthesize } from "../plugins/dataset/synth/generate.ts"
import { contactSheet } from "../plugins/dataset/synth/preview.ts"
import { STYLE_NAMES } from "../plugins/dataset/synth/styles.ts"
import { styleByName, VARIED_PREFIX } from "../plugins/dataset/synth/varied.ts"
import * as VirlRoutes from "../plugins/dataset/virl-routes.ts"
import { writeFileAtomic } from "../core/files.ts"
import { nativeLibm } from "../domain/virl/libm.ts"
import { splitOverrides } from "./overrides.ts"
import { progressBar } from "./progress.ts"
import { report, run, sync } from "./run.ts"
import { sweepCommand } from "./sweep.ts"
import { runner } from "./cluster.ts"
import { view } from "./view.ts"
import { evaluate } from "./eval.ts"
import { exportCommand } from "./export.ts"
import { CommandLine } from "./overrides.ts"
import { train } from "./train.ts"
import { PARENT_SILENT_EXIT } from "../app/processes.ts"
import { integerSetting, textSetting } from "../core/settings.ts"

const conformance = Command.make(
  "conformance",
  { dir: Args.directory({ name: "DIR", exists: "yes" }), verbose: Options.boolean("verbose").pipe(Options.withAlias("v")) },
  ({ dir, verbose }) =>
    Effect.gen(function*() {
      const results = yield* runConformance(dir, (r) => {
        if (!r.ok) console.log(`FAIL ${r.file}[${r.index}] (${r.label}): ${r.detail}`)
        else if (verbose) console.log(`ok   ${r.file}[${r.index}] (${r.label})`)
      })
      const failed = results.filter((r) => !r.ok).length
      console.log(`${results.length - failed} passed, ${failed} failed`)
      if (!nativeLibm) {
        console.log(
          "note: headings use JS stand-ins for the C library's sin/cos/atan2 (native/libm not built: run `npm run install`); a few between geocodes < 1 m apart may differ in the 8th decimal"
        )
      }
      if (failed > 0 || results.length === 0) process.exitCode = 1
    }).pipe(Effect.catchAll((e) => printError(`conformance: ${e.message}`)))
).pipe(Command.withDescription("Replay a folder of reference cases (cases/ beside dataset/) and report N passed, M failed."))

const check = Command.make(
  "check",
  {
    dir: Args.directory({ name: "DIR" }),
    deep: Options.boolean("deep").pipe(Options.withDescription("decode every panorama fully, not only its header")),
    radius: Options.float("mapping-radius").pipe(Options.withDefault(20), Options.withDescription("MAPPING_RADIUS in metres"))
  },
  ({ dir, deep, radius }) =>
    Effect.gen(function*() {
      const report = yield* checkDataset(dir, { deep, mappingRadius: radius, onProgress: progressBar("checking panoramas") })
      for (const problem of report.problems) console.log(`problem: ${problem.toString()}`)
      console.log(`${dir}: ${report.routes} routes, ${report.panoramas} panoramas, ${report.problems.length} problems`)
      if (report.problems.length > 0) process.exitCode = 1
    })
).pipe(Command.withDescription("Validate a dataset in the VIRL_routes layout; report every problem with its file and field."))

const synth = Command.make(
  "synth",
  {
    city: Options.text("city").pipe(
      Options.withDescription(
        `visual style and street layout: ${
          STYLE_NAMES.join(", ")
        }, or ${VARIED_PREFIX}N for the style drawn from seed N (as the base model's pretraining mixture uses); NAME@B turns its street grid to bearing B (sf@29)`
      )
    ),
    routes: Options.integer("routes").pipe(Options.withDefault(64), Options.withDescription("number of routes")),
    seed: Options.integer("seed").pipe(Options.withDefault(0)),
    out: Options.directory("out").pipe(
      Options.withDescription("folder to write (a dataset this command wrote before is replaced; any other folder is refused)")
    ),
    width: Options.integer("panorama-width").pipe(
      Options.withDefault(DEFAULT_PANORAMA.width),
      Options.withDescription("panorama width in pixels (height is half); the real data's is about 2048")
    )
  },
  ({ city, routes, seed, out, width }) =>
    Effect.gen(function*() {
      if (routes < 1) return yield* printError("--routes must be at least 1")
      if (styleByName(city) === undefined) {
        return yield* printError(`--city ${JSON.stringify(city)}: choose one of ${STYLE_NAMES.join(", ")} or ${VARIED_PREFIX}N, optionally @B (a grid bearing)`)
      }
      if (width < 64 || width % 2 !== 0) return yield* printError("--panorama-width must be an even number of at least 64")
      const report = yield* synthesize({
        city,
        seed,
        splits: [{ dir: out, routes }],
        panorama: { width, height: width / 2 },
        onProgress: progressBar("rendering panoramas")
      })
      const seconds = report.seconds.layout + report.seconds.render
      console.log(
        `${out}: ${report.routes} routes, ${report.panoramas} panoramas, ${(report.bytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(1)} s ` +
          `(${(report.panoramas / report.seconds.render).toFixed(1)} panoramas/s)`
      )
    }).pipe(Effect.catchTag("DatasetError", (e) => printError(e.toString())))
).pipe(Command.withDescription("Generate a synthetic city in the VIRL_routes layout (route_infos.json, gps_pano_mapping.pkl, street_views/)."))

const preview = Command.make(
  "preview",
  {
    dir: Args.directory({ name: "DIR", exists: "yes" }),
    out: Options.file("out").pipe(Options.optional, Options.withDescription("PNG to write (default: DIR/preview.png)")),
    routes: Options.integer("routes").pipe(Options.withDefault(4)),
    resolution: Options.integer("resolution").pipe(Options.withDefault(160), Options.withDescription("side of each view in the 2×2 grid"))
  },
  ({ dir, out, routes, resolution }) =>
    Effect.gen(function*() {
      const dataset = yield* VirlRoutes.load(dir)
      const png = yield* contactSheet(dataset, { routes, resolution })
      const file = Option.getOrElse(out, () => path.join(dir, "preview.png"))
      yield* Effect.try({
        try: () => writeFileAtomic(file, png),
        catch: (e) => new DatasetError({ path: file, message: `cannot write: ${String(e)}` })
      })
      console.log(`wrote ${file}`)
    }).pipe(Effect.catchTag("DatasetError", (e) => printError(e.toString())))
).pipe(Command.withDescription("Write a contact sheet (PNG) of 2×2 observations at the start, an intersection and the destination of a few routes."))

const defaults = Command.make("default", {}, () =>
  Effect.gen(function*() {
    const paths = yield* ensureDefault({ onProgress: progressBar("rendering panoramas"), log: (line) => console.error(line) })
    console.log(`train (nyc):        ${paths.train}\neval (nyc):         ${paths.eval}\nvisual-ood (sf):    ${paths.visualOod}`)
  }).pipe(Effect.catchTag("DatasetError", (e) => printError(e.toString())))).pipe(
    Command.withDescription("Generate the embedded default datasets if the cache lacks them (VIRL_CACHE, default ~/.cache/virl) and print where they are.")
  )

const fetchData = Command.make(
  "fetch",
  {
    source: Args.choice([["sftvsrl", "sftvsrl"]], { name: "SOURCE" }),
    out: Options.directory("out").pipe(Options.optional, Options.withDescription("where to put it (default: VIRL_CACHE/sftvsrl, ~/.cache/virl/sftvsrl)")),
    revision: Options.text("revision").pipe(Options.withDefault("main"), Options.withDescription("the dataset repository's branch, tag or commit")),
    parallel: Options.integer("parallel").pipe(Options.withDefault(2), Options.withDescription("files downloaded at once"))
  },
  ({ out, revision, parallel }) =>
    Effect.gen(function*() {
      const dir = Option.getOrElse(out, () => path.join(cacheRoot(), "sftvsrl"))
      const token = hubToken(
        Object.fromEntries((["HF_TOKEN", "HF_TOKEN_PATH", "HF_HOME", "XDG_CACHE_HOME"] as const).map((k) => [k, textSetting(k)])),
        os.homedir()
      )
      const report = yield* fetchSftVsRl(
        dir,
        {
          endpoint: (textSetting("HF_ENDPOINT") ?? "https://huggingface.co").replace(/\/+$/, ""),
          ...(token === undefined ? {} : { token }),
          repo: SFTVSRL.repo,
          revision,
          parallel: Math.max(1, parallel),
          timeoutMs: 60_000
        },
        { bar: progressBar, log: (line) => console.error(line) }
      )
      let problems = 0
      for (const [name, folder] of Object.entries(report.folders).filter(([name]) => name !== "nyc-eval")) {
        const checked = yield* checkDataset(folder, { onProgress: progressBar(`checking ${name}`) })
        for (const problem of checked.problems.slice(0, 20)) console.log(`problem: ${problem.toString()}`)
        problems += checked.problems.length
        console.log(`${name}: ${checked.routes} routes, ${checked.panoramas} panoramas, ${checked.problems.length} problems`)
      }
      console.log(
        `${report.downloaded.length} downloaded, ${report.present.length} already there; nyc-eval is nyc-train, as in the reference.\n` +
          `Run the paper's splits with:  VIRL_DATASETS=${report.root} npx virl run experiments/sft_vs_rl.ts`
      )
      if (problems > 0) process.exitCode = 1
    }).pipe(Effect.catchTag("DatasetError", (e) => printError(e.toString())))
).pipe(
  Command.withDescription(
    "Download the paper's V-IRL routes (tianzhechu/SFTvsRL_Data on the Hugging Face hub; HF_ENDPOINT; a token from HF_TOKEN or where huggingface-cli login saves it, HF_TOKEN_PATH or HF_HOME/token): resumable, sha256-checked, unzipped, checked, and arranged for VIRL_DATASETS. Replaces only the links it made."
  )
)

const data = Command.make("data").pipe(Command.withSubcommands([check, synth, preview, defaults, fetchData]), Command.withDescription("Dataset tools."))

const virl = Command.make("virl").pipe(
  Command.withSubcommands([run, sweepCommand, runner, report, sync, view, train, evaluate, exportCommand, data, conformance]),
  Command.withDescription("Post-train vision-language agents with SFT and RL on V-IRL navigation.")
)

const cli = Command.run(virl, { name: "virl", version: "0.1.0" })

// a trial started by a sweep or a cluster runner stops when its parent dies, even by SIGKILL:
// the parent holds the other end of our stdin, and the pipe closes with it
if (textSetting("VIRL_EXIT_WITH_PARENT") === "1") {
  process.stdin.on("end", () => process.kill(process.pid, "SIGTERM"))
  process.stdin.resume()
  process.stdin.unref()
  // a parent that is alive but silent (stopped): it sends a byte a second while it runs
  const silence = integerSetting("VIRL_PARENT_SILENCE_S")
  if (silence !== undefined) {
    let heard = Date.now()
    let checked = Date.now()
    let stopping = false
    process.stdin.on("data", () => (heard = Date.now()))
    setInterval(() => {
      const now = Date.now()
      // this process's own loop was busy (a long step): what came meanwhile is not read yet, judge next time
      if (now - checked > 2000) heard = Math.max(heard, now - 1000)
      checked = now
      if (now - heard > silence * 1000 && !stopping) {
        stopping = true
        // an exit its parent recognises: not the trial's failure, an interruption to go on from
        process.on("exit", () => (process.exitCode = PARENT_SILENT_EXIT))
        process.stderr.write(`the process that started this one has sent nothing for ${silence} s (stopped?): stopping\n`)
        process.kill(process.pid, "SIGTERM")
        // a run that does not stop within 5 s (a long step between its checks) is stopped outright: it resumes from its checkpoints
        setTimeout(() => process.exit(PARENT_SILENT_EXIT), 5000).unref()
      }
    }, 1000).unref()
  }
}

const { argv, overrides } = splitOverrides(process.argv)

cli(argv).pipe(
  // a bad flag or argument: @effect/cli has already printed what is wrong; exit non-zero quietly
  Effect.catchIf(ValidationError.isValidationError, () => Effect.sync(() => (process.exitCode = 2))),
  Effect.provide(Layer.merge(NodeContext.layer, CommandLine.layer(overrides))),
  NodeRuntime.runMain
)
