import { Options } from "@effect/cli"
import { Effect, Either, Option } from "effect"
import { PRESETS } from "../app/config.ts"
import { buildConfig, CommandLine } from "./overrides.ts"

/** The options every command that takes a config shares: preset, YAML file, dataset folder. */
export const presetOption = Options.choice("preset", Object.keys(PRESETS) as [string, ...string[]]).pipe(
  Options.withDefault("small"),
  Options.withDescription("hyperparameters: small (the tfjs policy on a CPU) or paper (the reference's values)")
)
export const configOption = Options.file("config", { exists: "yes" }).pipe(Options.optional, Options.withDescription("YAML config (configs/*.yaml)"))
export const dataOption = Options.directory("data", { exists: "yes" }).pipe(
  Options.optional,
  Options.withDescription("dataset folder (default: the embedded synthetic cities)")
)

/** preset → config file → the command line's dotted flags (or `overrides`), checked. */
export const commandConfig = (preset: string, file: Option.Option<string>, overrides?: Readonly<Record<string, string>>) =>
  Effect.flatMap(overrides === undefined ? Effect.map(CommandLine, (c) => c.overrides) : Effect.succeed(overrides), (flags) => {
    const resolved = buildConfig({ preset, ...(Option.isSome(file) ? { configFile: file.value } : {}), overrides: flags })
    return Either.isLeft(resolved) ? Effect.fail(resolved.left) : Effect.succeed(resolved.right)
  })
