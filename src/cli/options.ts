import { Options } from "@effect/cli"
import { Effect, Either, Option } from "effect"
import { PRESETS } from "../app/config.ts"
import { buildConfig, commandLine } from "./overrides.ts"

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
export const commandConfig = (preset: string, file: Option.Option<string>, overrides: Record<string, string> = commandLine.overrides) =>
  Effect.suspend(() => {
    const resolved = buildConfig({ preset, ...(Option.isSome(file) ? { configFile: file.value } : {}), overrides })
    return Either.isLeft(resolved) ? Effect.fail(resolved.left) : Effect.succeed(resolved.right)
  })
