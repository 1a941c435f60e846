import { Args, Command, Options } from "@effect/cli"
import { Effect, Either, Option } from "effect"
import { fail, reportError } from "./fail.ts"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { isSweep, trials, type Sweep } from "../core/experiment.ts"
import { writeFileAtomic } from "../core/files.ts"
import { loadExperimentFile } from "../app/experiment-file.ts"
import { defaultDatasets } from "../app/layers.ts"
import { PALETTE, renderPlot } from "../app/plot.ts"
import { suiteKey, type Results } from "../app/report.ts"
import { armComponents, trainingLayer } from "../app/components.ts"
import { suiteLabel, suiteSpecs } from "../app/suites.ts"
import { overridesHelp } from "./overrides.ts"
import { progressBar } from "./progress.ts"
import { armConfig, ExperimentError } from "../app/run.ts"
import { ensureBase } from "../app/train.ts"
import { cliProgress, commandLine } from "./train.ts"

const BIN = path.resolve(import.meta.dirname, "../../bin/virl.mjs")

export const trialFolder = (label: string) => label.replace(/[^A-Za-z0-9_.=,-]/g, "_")

/**
 * Runs one trial as a child `virl run FILE --trial LABEL`, its output in the trial's run.log; the
 * child is killed if the sweep is interrupted (Ctrl-C leaves no orphan).
 */
const runTrial = (file: string, label: string, dir: string, quick: boolean) =>
  Effect.async<number>((resume) => {
    fs.mkdirSync(dir, { recursive: true })
    const logFile = fs.openSync(path.join(dir, "run.log"), "a")
    const args = [BIN, "run", file, "--trial", label, "--out", dir, ...(quick ? ["--quick"] : []), ...Object.entries(commandLine.overrides).map(([k, v]) => `--${k}=${v}`)]
    const child = spawn(process.execPath, args, { stdio: ["ignore", logFile, logFile] })
    child.on("exit", (code) => {
      fs.closeSync(logFile)
      resume(Effect.succeed(code ?? 1))
    })
    // interrupted: ask the trial to stop (it saves nothing half-written), then make sure it has
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

const comparison = async (sweep: Sweep, out: string, labels: ReadonlyArray<string>) => {
  const rows: Array<{ label: string; results: Results | undefined }> = labels.map((label) => {
    const f = path.join(out, "trials", trialFolder(label), "results.json")
    return { label, results: fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, "utf8")) as Results) : undefined }
  })
  const suites = suiteSpecs(sweep.base.suites).map(suiteLabel)
  const cell = (r: Results | undefined, suite: string, metric: string) => {
    const s = r?.arms[sweep.compare]?.[suite]?.[metric]
    return s === undefined ? "—" : `${(100 * s.mean).toFixed(1)} ± ${(100 * s.std).toFixed(1)}`
  }
  const md = [
    `# ${sweep.name}`,
    "",
    `${sweep.description ?? ""} — arm \`${sweep.compare}\`, percent, mean ± std over seeds.`,
    "",
    `| trial | ${suites.map((s) => `${s.title} per-step acc. | ${s.title} success`).join(" | ")} |`,
    `|---|${suites.map(() => "---:|---:").join("|")}|`,
    ...rows.map((r) => `| ${r.label} | ${suites.map((s) => `${cell(r.results, suiteKey(s.name), "per_step_accuracy")} | ${cell(r.results, suiteKey(s.name), "success_rate")}`).join(" | ")} |`),
    "",
    ...rows.map((r, i) => `trial ${i + 1}: ${r.label}`),
    ""
  ].join("\n")
  writeFileAtomic(path.join(out, "sweep.md"), md)
  writeFileAtomic(path.join(out, "sweep.json"), JSON.stringify({ sweep: sweep.name, compare: sweep.compare, trials: rows }, null, 2))
  const png = await renderPlot([
    {
      title: `${sweep.name.toUpperCase()}: ${sweep.compare.toUpperCase()}`,
      xLabel: "TRIAL (SEE SWEEP.MD)",
      yLabel: "PER-STEP ACCURACY",
      yRange: [0, 1],
      series: suites.map((s, k) => ({
        label: s.title.toUpperCase(),
        colour: PALETTE[k],
        points: rows.flatMap((r, i) => {
          const v = r.results?.arms[sweep.compare]?.[suiteKey(s.name)]?.["per_step_accuracy"]
          return v === undefined ? [] : [[i + 1, v.mean] as const]
        })
      }))
    }
  ], 640, 360)
  fs.mkdirSync(path.join(out, "plots"), { recursive: true })
  writeFileAtomic(path.join(out, "plots", "sweep.png"), png)
  return md
}

export const sweepCommand = Command.make(
  "sweep",
  {
    file: Args.file({ name: "FILE", exists: "yes" }),
    parallel: Options.integer("parallel").pipe(Options.withDefault(Math.max(1, Math.min(2, os.availableParallelism()))), Options.withDescription("trials run at once")),
    quick: Options.boolean("quick"),
    out: Options.directory("out").pipe(Options.optional)
  },
  ({ file, parallel, quick, out }) =>
    Effect.gen(function* () {
      const loaded = yield* loadExperimentFile(file)
      if (!isSweep(loaded)) return yield* fail(`${file} declares an experiment, not a sweep; run it with virl run ${file}`)
      const dir = Option.getOrElse(out, () => path.join("runs", loaded.name + (quick ? "-quick" : "")))
      // the datasets and base models are made once here, not by every trial at the same time
      yield* defaultDatasets(progressBar("rendering panoramas"))
      const all = trials(loaded)
      for (const t of all) {
        for (const arm of t.experiment.arms.filter((a) => a.recipe.kind === "pretrain")) {
          const config = yield* Either.match(armConfig(t.experiment, arm, { quick, overrides: commandLine.overrides }, t.experiment.seeds[0]), {
            onLeft: Effect.fail,
            onRight: Effect.succeed
          })
          yield* Effect.provide(ensureBase(config, cliProgress), trainingLayer(armComponents(t.experiment, arm, config)))
        }
      }
      const todo = all.filter((t) => !fs.existsSync(path.join(dir, "trials", trialFolder(t.label), "results.json")))
      console.error(`${all.length} trials, ${all.length - todo.length} already finished, ${todo.length} to run (${parallel} at a time) in ${dir}`)
      const bar = progressBar("trials")
      let finished = 0
      const failures: string[] = []
      yield* Effect.forEach(
        todo,
        (t) =>
          Effect.map(runTrial(file, t.label, path.join(dir, "trials", trialFolder(t.label)), quick), (code) => {
            if (code !== 0) failures.push(`${t.label} (exit ${code}; see ${path.join(dir, "trials", trialFolder(t.label), "run.log")})`)
            bar(++finished, todo.length)
          }),
        { concurrency: parallel }
      )
      const md = yield* Effect.tryPromise({
        try: () => comparison(loaded, dir, all.map((t) => t.label)),
        catch: (e) => new ExperimentError({ message: `cannot write the comparison of ${dir}: ${(e as Error).message}` })
      })
      console.log(md)
      if (failures.length > 0) return yield* fail(`failed trials: ${failures.join("; ")}`)
    }).pipe(Effect.catchAll(reportError))
).pipe(Command.withDescription("Run a sweep's trials in parallel processes, skip finished ones, and write a comparison table and plot.\n\n" + overridesHelp()))
