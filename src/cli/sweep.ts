import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { printError, reportError } from "./errors.ts"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { isSweep, type Sweep, trials } from "../core/experiment.ts"
import { writeFileAtomic } from "../core/files.ts"
import { loadExperimentFile } from "../app/experiment-file.ts"
import { defaultDatasets } from "../app/services.ts"
import { PALETTE, writeFigure } from "../app/plot.ts"
import { type Results, suiteKey } from "../app/report.ts"
import { suiteLabel, suiteSpecs } from "../app/suites.ts"
import { overridesHelp } from "./overrides.ts"
import { progressBar } from "./progress.ts"
import { ExperimentError } from "../app/run.ts"
import { prepareTrials, runTrialProcess, trialFolder } from "../app/trials.ts"
import { clusterSharding, databaseFlag, showStatus, submitSweep, writeTrialResults } from "./cluster.ts"
import { CommandLine } from "./overrides.ts"
import { cliProgress } from "./progress.ts"

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
    ...rows.map((r) =>
      `| ${r.label} | ${
        suites.map((s) => `${cell(r.results, suiteKey(s.name), "per_step_accuracy")} | ${cell(r.results, suiteKey(s.name), "success_rate")}`).join(" | ")
      } |`
    ),
    "",
    ...rows.map((r, i) => `trial ${i + 1}: ${r.label}`),
    ""
  ].join("\n")
  writeFileAtomic(path.join(out, "sweep.md"), md)
  writeFileAtomic(path.join(out, "sweep.json"), JSON.stringify({ sweep: sweep.name, compare: sweep.compare, trials: rows }, null, 2))
  fs.mkdirSync(path.join(out, "plots"), { recursive: true })
  await writeFigure(
    path.join(out, "plots"),
    "sweep",
    [
      {
        title: `${sweep.name}: arm ${sweep.compare}`,
        xLabel: "trial (see sweep.md)",
        yLabel: "per-step accuracy",
        yRange: [0, 1],
        yPercent: true,
        series: suites.map((s, k) => ({
          label: s.title,
          colour: PALETTE[k],
          points: rows.flatMap((r, i) => {
            const v = r.results?.arms[sweep.compare]?.[suiteKey(s.name)]?.["per_step_accuracy"]
            return v === undefined ? [] : [[i + 1, v.mean] as const]
          })
        }))
      }
    ],
    640,
    360
  )
  return md
}

export const sweepCommand = Command.make(
  "sweep",
  {
    file: Args.file({ name: "FILE", exists: "yes" }).pipe(Args.optional),
    parallel: Options.integer("parallel").pipe(
      Options.withDefault(Math.max(1, Math.min(2, os.availableParallelism()))),
      Options.withDescription("trials run at once (local)")
    ),
    quick: Options.boolean("quick"),
    out: Options.directory("out").pipe(Options.optional),
    db: Options.text("db").pipe(
      Options.optional,
      Options.withDescription("the cluster's database (postgres://user:password@host:port/db or sqlite:PATH); default $VIRL_DB")
    ),
    status: Options.boolean("status").pipe(Options.withDescription("with --db: show the trials the cluster has, and stop")),
    wandb: Options.boolean("wandb").pipe(
      Options.withDescription("stream each local trial to Weights & Biases as it runs (W&B runs per arm and seed, grouped by trial; WANDB_API_KEY)")
    )
  },
  ({ file, parallel, quick, out, db, status, wandb }) =>
    Effect.gen(function*() {
      const { cluster, overrides } = clusterSharding((yield* CommandLine).overrides)
      if (status) {
        const url = yield* databaseFlag(db)
        let name: string | undefined
        if (Option.isSome(file)) {
          const loaded = yield* loadExperimentFile(file.value)
          if (!isSweep(loaded)) return yield* printError(`${file.value} declares an experiment, not a sweep`)
          name = loaded.name + (quick ? "-quick" : "")
        }
        return yield* showStatus(url, name)
      }
      if (Option.isNone(file)) return yield* printError("virl sweep needs FILE (or --status --db URL)")
      const loaded = yield* loadExperimentFile(file.value)
      if (!isSweep(loaded)) return yield* printError(`${file.value} declares an experiment, not a sweep; run it with virl run ${file.value}`)
      const dir = Option.getOrElse(out, () => path.join("runs", loaded.name + (quick ? "-quick" : "")))
      const all = trials(loaded)
      const todo = all.filter((t) => !fs.existsSync(path.join(dir, "trials", trialFolder(t.label), "results.json")))
      const failures: string[] = []
      if (cluster) {
        const url = yield* databaseFlag(db)
        console.error(`${all.length} trials, ${all.length - todo.length} already in ${dir}, ${todo.length} to get from the cluster`)
        const outcomes = yield* submitSweep(loaded, file.value, url, { quick, overrides: overrides, labels: todo.map((t) => t.label) })
        failures.push(...writeTrialResults(dir, outcomes))
      } else {
        // the datasets and base models are made once here, not by every trial at the same time
        yield* defaultDatasets(progressBar("rendering panoramas"))
        yield* prepareTrials(loaded, all, { quick, overrides: overrides, progress: cliProgress })
        console.error(`${all.length} trials, ${all.length - todo.length} already finished, ${todo.length} to run (${parallel} at a time) in ${dir}`)
        const bar = progressBar("trials")
        let finished = 0
        yield* Effect.forEach(
          todo,
          (t) => {
            const trialDir = path.join(dir, "trials", trialFolder(t.label))
            return Effect.map(runTrialProcess({ file: file.value, label: t.label, dir: trialDir, quick, overrides: overrides, wandb }), (code) => {
              if (code !== 0) failures.push(`${t.label} (exit ${code}; see ${path.join(trialDir, "run.log")})`)
              bar(++finished, todo.length)
            })
          },
          { concurrency: parallel }
        )
      }
      const md = yield* Effect.tryPromise({
        try: () => comparison(loaded, dir, all.map((t) => t.label)),
        catch: (e) => new ExperimentError({ message: `cannot write the comparison of ${dir}: ${(e as Error).message}` })
      })
      console.log(md)
      if (failures.length > 0) return yield* printError(`failed trials: ${failures.join("; ")}`)
    }).pipe(Effect.catchAll(reportError))
).pipe(
  Command.withDescription(
    "Run a sweep's trials — in parallel processes here, or as durable jobs on a cluster of `virl runner`s (--sharding cluster --db URL) — skip finished ones, and write a comparison table and plot. --sharding local|workers|workers:N sets where each trial's environments step.\n\n" +
      overridesHelp()
  )
)
