import { Command, Options } from "@effect/cli"
import { Effect, Either, Option } from "effect"
import { reportError } from "./fail.ts"
import { buildConfig, overridesHelp } from "./overrides.ts"
import { PRESETS } from "../app/config.ts"
import { withDefaults } from "../app/components.ts"
import { suiteSpec } from "../app/suites.ts"
import { evaluateSuite, loadPolicy, SUITES, type SuiteName } from "../app/evaluate.ts"
import { defaultDatasets } from "../app/layers.ts"
import { ensureBase, trainPpo, trainPretrain, trainRft, trainSft, type Progress } from "../app/train.ts"
import { progressBar } from "./progress.ts"

/** Dotted config overrides found on the command line (set by main before parsing). */
export const commandLine = { overrides: {} as Record<string, string> }

export const cliProgress: Progress = { bar: progressBar, log: (line) => process.stderr.write(`${line}\n`) }

const presetOption = Options.choice("preset", Object.keys(PRESETS) as [string, ...string[]]).pipe(
  Options.withDefault("small"),
  Options.withDescription("hyperparameters: small (the tfjs policy on a CPU) or paper (the reference's values)")
)
const configOption = Options.file("config", { exists: "yes" }).pipe(Options.optional, Options.withDescription("YAML config (configs/*.yaml)"))
const dataOption = Options.directory("data", { exists: "yes" }).pipe(Options.optional, Options.withDescription("dataset folder (default: the embedded synthetic cities)"))

const config = (preset: string, file: Option.Option<string>) =>
  Effect.suspend(() => {
    const resolved = buildConfig({ preset, ...(Option.isSome(file) ? { configFile: file.value } : {}), overrides: commandLine.overrides })
    return Either.isLeft(resolved) ? Effect.fail(resolved.left) : Effect.succeed(resolved.right)
  })

const sft = Command.make(
  "sft",
  { data: dataOption, out: Options.directory("out"), preset: presetOption, file: configOption },
  ({ data, out, preset, file }) =>
    Effect.gen(function* () {
      const cfg = yield* config(preset, file)
      const dir = Option.isSome(data) ? data.value : (yield* defaultDatasets(progressBar("rendering panoramas"))).train
      const ckpt = yield* withDefaults(cfg, trainSft(cfg, dir, out, cliProgress))
      console.log(ckpt)
    }).pipe(Effect.catchAll(reportError))
).pipe(Command.withDescription("Supervised fine-tuning on expert (oracle) trajectories; writes OUT/checkpoint and OUT/metrics.jsonl. Dotted flags override config keys.\n\n" + overridesHelp()))

const ppo = Command.make(
  "ppo",
  { init: Options.directory("init", { exists: "yes" }), data: dataOption, out: Options.directory("out"), preset: presetOption, file: configOption },
  ({ init, data, out, preset, file }) =>
    Effect.gen(function* () {
      const cfg = yield* config(preset, file)
      const dir = Option.isSome(data) ? data.value : (yield* defaultDatasets(progressBar("rendering panoramas"))).train
      const ckpt = yield* withDefaults(cfg, trainPpo(cfg, init, dir, out, cliProgress))
      console.log(ckpt)
    }).pipe(Effect.catchAll(reportError))
).pipe(Command.withDescription("PPO from a checkpoint (the reference's algorithm); resumes from OUT/checkpoint when re-run. Dotted flags override config keys.\n\n" + overridesHelp()))

const rft = Command.make(
  "rft",
  {
    init: Options.directory("init", { exists: "yes" }),
    samples: Options.text("samples").pipe(
      Options.withDefault("self"),
      Options.withDescription("checkpoint folder of the policy that writes the samples (e.g. the base model), or self: the policy being trained")
    ),
    data: dataOption,
    out: Options.directory("out"),
    preset: presetOption,
    file: configOption
  },
  ({ init, samples, data, out, preset, file }) =>
    Effect.gen(function* () {
      const cfg = yield* config(preset, file)
      const dir = Option.isSome(data) ? data.value : (yield* defaultDatasets(progressBar("rendering panoramas"))).train
      const ckpt = yield* withDefaults(cfg, trainRft(cfg, init, samples, dir, out, cliProgress))
      console.log(ckpt)
    }).pipe(Effect.catchAll(reportError))
).pipe(
  Command.withDescription(
    "Rejection-sampling fine-tuning from a checkpoint: rollouts written by --samples, SFT on the outputs the environment verified as correct; resumes when re-run." + "\n\n" + overridesHelp()
  )
)

const pretrain = Command.make(
  "pretrain",
  { out: Options.directory("out").pipe(Options.optional, Options.withDescription("also copy the base model here")), preset: presetOption, file: configOption },
  ({ out, preset, file }) =>
    Effect.gen(function* () {
      const cfg = yield* config(preset, file)
      const dir = Option.isSome(out) ? yield* withDefaults(cfg, trainPretrain(cfg, out.value, cliProgress)) : `${yield* withDefaults(cfg, ensureBase(cfg, cliProgress))}/checkpoint`
      console.log(dir)
    }).pipe(Effect.catchAll(reportError))
).pipe(
  Command.withDescription(
    "Build (once) the base model of pretrain_config — behaviour cloning on a mixture of procedurally varied cities and both rule sets — and print its checkpoint. Cached in VIRL_CACHE." + "\n\n" + overridesHelp()
  )
)

export const train = Command.make("train").pipe(Command.withSubcommands([pretrain, sft, ppo, rft]), Command.withDescription("Train a policy."))

export const evaluate = Command.make(
  "eval",
  {
    policy: Options.text("policy").pipe(Options.withDescription("oracle, random, openai:MODEL, or a checkpoint folder")),
    endpoint: Options.text("endpoint").pipe(Options.optional, Options.withDescription("OpenAI-compatible base URL for openai:MODEL (default OPENAI_BASE_URL)")),
    suite: Options.choice("suite", SUITES),
    data: dataOption,
    json: Options.boolean("json").pipe(Options.withDescription("print the metrics as one JSON object on the last line")),
    log: Options.file("log").pipe(Options.optional, Options.withDescription("write the per-step JSONL log (the reference's format) here")),
    preset: presetOption,
    file: configOption
  },
  ({ policy, endpoint, suite, data, json, log, preset, file }) =>
    Effect.gen(function* () {
      const cfg = yield* config(preset, file)
      // with --data the suite runs there; the default cities are made only when needed
      const datasets = Option.isSome(data)
        ? { root: data.value, train: data.value, eval: data.value, visualOod: data.value }
        : yield* defaultDatasets(progressBar("rendering panoramas"))
      const p = yield* loadPolicy(policy, cfg, Option.getOrUndefined(endpoint))
      const metrics = yield* evaluateSuite(cfg, p, suiteSpec(suite as SuiteName), datasets, {
        ...(Option.isSome(data) ? { data: data.value } : {}),
        ...(Option.isSome(log) ? { logFile: log.value } : {}),
        onEpisode: progressBar(`eval ${suite}`)
      })
      const { rates, ...numbers } = metrics
      if (!json) {
        console.log(`${suite} — ${policy}`)
        for (const [k, v] of Object.entries(numbers)) console.log(`  ${k.padEnd(24)} ${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(4) : v}`)
        console.log(`  rates                    ${JSON.stringify(rates)}`)
      } else console.log(JSON.stringify(numbers))
    }).pipe(Effect.catchAll(reportError))
).pipe(Command.withDescription("Evaluate a policy on a suite (indist, rule-ood, visual-ood): per-step accuracy, success rate, rewards, steps.\n\n" + overridesHelp()))

