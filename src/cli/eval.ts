import { Command, Options } from "@effect/cli"
import { Effect, Either, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { withDefaults } from "../app/components.ts"
import { evaluateSuite, loadPolicy, type SuiteName, SUITES } from "../app/evaluate.ts"
import { defaultDatasets } from "../app/services.ts"
import { suiteSpec } from "../app/suites.ts"
import type { SuiteMetrics } from "../core/evaluation.ts"
import { writeFileAtomic } from "../core/files.ts"
import { clusterSharding, databaseFlag, type EvalResult, submitEvals } from "./cluster.ts"
import { printError, reportError } from "./errors.ts"
import { commandConfig as config, configOption, dataOption, presetOption } from "./options.ts"
import { CommandLine, overridesHelp } from "./overrides.ts"
import { progressBar } from "./progress.ts"

/** `--suite indist,rule-ood`: the suites, checked. */
const parseSuites = (text: string): Either.Either<SuiteName[], string> => {
  const names = text.split(",").map((x) => x.trim()).filter((x) => x !== "")
  const unknown = names.filter((n) => !(SUITES as ReadonlyArray<string>).includes(n))
  if (names.length === 0 || unknown.length > 0) {
    return Either.left(`--suite: unknown suite ${unknown.join(", ") || "(none)"}; the suites are ${SUITES.join(", ")} (several: separated by commas)`)
  }
  return Either.right([...new Set(names)] as SuiteName[])
}

const printMetrics = (suite: string, policy: string, metrics: SuiteMetrics, json: boolean) => {
  const { rates, episodes: _, ...numbers } = metrics
  if (json) {
    console.log(JSON.stringify(numbers))
    return
  }
  console.log(`${suite} — ${policy}`)
  for (const [k, v] of Object.entries(numbers)) console.log(`  ${k.padEnd(24)} ${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(4) : v}`)
  console.log(`  rates                    ${JSON.stringify(rates)}`)
}

export const evaluate = Command.make(
  "eval",
  {
    policy: Options.text("policy").pipe(Options.withDescription("oracle, random, openai:MODEL, or a checkpoint folder")),
    endpoint: Options.text("endpoint").pipe(Options.optional, Options.withDescription("OpenAI-compatible base URL for openai:MODEL (default OPENAI_BASE_URL)")),
    suite: Options.text("suite").pipe(Options.withDescription(`the suite (${SUITES.join(", ")}), or several separated by commas`)),
    data: dataOption,
    json: Options.boolean("json").pipe(Options.withDescription("print each suite's metrics as one JSON object on a line of its own, the last lines")),
    log: Options.text("log").pipe(
      Options.optional,
      Options.withDescription("write the per-step JSONL log (the reference's format) here; with several suites a folder, one <suite>.jsonl each")
    ),
    db: Options.text("db").pipe(Options.optional, Options.withDescription("with --sharding cluster: the cluster's database (default $VIRL_DB)")),
    preset: presetOption,
    file: configOption
  },
  ({ policy, endpoint, suite, data, json, log, db, preset, file }) =>
    Effect.gen(function*() {
      const suites = parseSuites(suite)
      if (Either.isLeft(suites)) return yield* printError(suites.left)
      const { cluster: onCluster, overrides } = clusterSharding((yield* CommandLine).overrides)
      const cfg = yield* config(preset, file, overrides)
      const logFile = (name: SuiteName): string | undefined =>
        Option.isNone(log) ? undefined : suites.right.length === 1 ? log.value : path.join(log.value, `${name}.jsonl`)
      if (Option.isSome(log) && suites.right.length > 1) fs.mkdirSync(log.value, { recursive: true })
      if (onCluster) {
        const outcomes = yield* submitEvals(yield* databaseFlag(db), {
          policy,
          suites: suites.right,
          config: cfg,
          data: Option.isSome(data) ? path.resolve(data.value) : null
        })
        const failures: string[] = []
        for (const [name, outcome] of outcomes) {
          if (!outcome.ok) {
            failures.push(`${name}: ${outcome.message}`)
            continue
          }
          const result = JSON.parse(outcome.results) as EvalResult
          const file = logFile(name)
          if (file !== undefined) writeFileAtomic(file, result.log)
          printMetrics(name, policy, result.metrics, json)
        }
        if (failures.length > 0) return yield* printError(`${failures.length} of ${outcomes.size} suites failed on the cluster:\n${failures.join("\n")}`)
        return
      }
      // with --data the suite runs there; the default cities are made only when needed
      const datasets = Option.isSome(data)
        ? { root: data.value, train: data.value, eval: data.value, visualOod: data.value }
        : yield* defaultDatasets(progressBar("rendering panoramas"))
      for (const name of suites.right) {
        // a policy of its own per suite (a sampling policy's generator starts afresh): a suite's
        // result does not depend on the suites before it, as on the cluster
        const file = logFile(name)
        const metrics = yield* withDefaults(
          cfg,
          Effect.flatMap(loadPolicy(policy, cfg, Option.getOrUndefined(endpoint)), (p) =>
            evaluateSuite(cfg, p, suiteSpec(name), datasets, {
              ...(Option.isSome(data) ? { data: data.value } : {}),
              ...(file === undefined ? {} : { logFile: file }),
              onEpisode: progressBar(`eval ${name}`)
            }))
        )
        printMetrics(name, policy, metrics, json)
      }
    }).pipe(Effect.catchAll(reportError))
).pipe(
  Command.withDescription(
    "Evaluate a policy on suites (indist, rule-ood, visual-ood): per-step accuracy, success rate, rewards, steps. With --sharding cluster --db URL each suite is a durable job on the cluster's runners (the checkpoint travels through the database).\n\n" +
      overridesHelp()
  )
)
