import { Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { withDefaults } from "../app/components.ts"
import { defaultDatasets } from "../app/services.ts"
import { ensureBase, trainPretrain } from "../app/base-model.ts"
import { trainPpo, trainRft, trainSft } from "../app/train.ts"
import { reportError } from "./errors.ts"
import { commandConfig as config, configOption, dataOption, presetOption } from "./options.ts"
import { overridesHelp } from "./overrides.ts"
import { cliProgress, progressBar } from "./progress.ts"

const sft = Command.make(
  "sft",
  { data: dataOption, out: Options.directory("out"), preset: presetOption, file: configOption },
  ({ data, out, preset, file }) =>
    Effect.gen(function*() {
      const cfg = yield* config(preset, file)
      const dir = Option.isSome(data) ? data.value : (yield* defaultDatasets(progressBar("rendering panoramas"))).train
      const ckpt = yield* withDefaults(cfg, trainSft(cfg, dir, out, cliProgress))
      console.log(ckpt)
    }).pipe(Effect.catchAll(reportError))
).pipe(
  Command.withDescription(
    "Supervised fine-tuning on expert (oracle) trajectories; writes OUT/checkpoint and OUT/metrics.jsonl. Dotted flags override config keys.\n\n" +
      overridesHelp()
  )
)

const ppo = Command.make(
  "ppo",
  { init: Options.directory("init", { exists: "yes" }), data: dataOption, out: Options.directory("out"), preset: presetOption, file: configOption },
  ({ init, data, out, preset, file }) =>
    Effect.gen(function*() {
      const cfg = yield* config(preset, file)
      const dir = Option.isSome(data) ? data.value : (yield* defaultDatasets(progressBar("rendering panoramas"))).train
      const ckpt = yield* withDefaults(cfg, trainPpo(cfg, init, dir, out, cliProgress))
      console.log(ckpt)
    }).pipe(Effect.catchAll(reportError))
).pipe(
  Command.withDescription(
    "PPO from a checkpoint (the reference's algorithm); resumes from OUT/checkpoint when re-run. Dotted flags override config keys.\n\n" + overridesHelp()
  )
)

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
    Effect.gen(function*() {
      const cfg = yield* config(preset, file)
      const dir = Option.isSome(data) ? data.value : (yield* defaultDatasets(progressBar("rendering panoramas"))).train
      const ckpt = yield* withDefaults(cfg, trainRft(cfg, init, samples, dir, out, cliProgress))
      console.log(ckpt)
    }).pipe(Effect.catchAll(reportError))
).pipe(
  Command.withDescription(
    "Rejection-sampling fine-tuning from a checkpoint: rollouts written by --samples, SFT on the outputs the environment verified as correct; resumes when re-run." +
      "\n\n" + overridesHelp()
  )
)

const pretrain = Command.make(
  "pretrain",
  { out: Options.directory("out").pipe(Options.optional, Options.withDescription("also copy the base model here")), preset: presetOption, file: configOption },
  ({ out, preset, file }) =>
    Effect.gen(function*() {
      const cfg = yield* config(preset, file)
      const dir = Option.isSome(out)
        ? yield* withDefaults(cfg, trainPretrain(cfg, out.value, cliProgress))
        : `${yield* withDefaults(cfg, ensureBase(cfg, cliProgress))}/checkpoint`
      console.log(dir)
    }).pipe(Effect.catchAll(reportError))
).pipe(
  Command.withDescription(
    "Build (once) the base model of pretrain_config — behaviour cloning on a mixture of procedurally varied cities and both rule sets — and print its checkpoint. Cached in VIRL_CACHE." +
      "\n\n" + overridesHelp()
  )
)

export const train = Command.make("train").pipe(Command.withSubcommands([pretrain, sft, ppo, rft]), Command.withDescription("Train a policy."))
