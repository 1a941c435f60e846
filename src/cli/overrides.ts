import { Either } from "effect"
import { type ConfigError, PRESETS, readConfigFile, resolveConfig, RunConfig } from "../app/config.ts"

/**
 * Config overrides are dotted flags (`--ppo_config.clip_param=0.2`, `--seed=7`), taken out of
 * argv before @effect/cli parses the rest, for the commands that take config (CONFIG_COMMANDS): a
 * flag whose name has a dot or an underscore, or is a top-level config key, is an override; CLI
 * options use hyphens. Other commands parse all their flags themselves.
 */
const TOP_LEVEL = new Set(Object.keys(RunConfig.fields))

/** The dotted overrides of this process's command line, taken out by main before @effect/cli parses the rest. */
export const commandLine = { overrides: {} as Record<string, string> }

/** The commands that take config keys; any other command's flags are its own (`virl data synth --seed 3`). */
export const CONFIG_COMMANDS: ReadonlyArray<string> = ["run", "sweep", "train", "eval"]

export const splitOverrides = (argv: ReadonlyArray<string>): { readonly argv: string[]; readonly overrides: Record<string, string> } => {
  const rest: string[] = []
  const overrides: Record<string, string> = {}
  if (!CONFIG_COMMANDS.includes(argv[2] ?? "")) return { argv: [...argv], overrides }
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([A-Za-z0-9_.]+)(?:=(.*))?$/.exec(argv[i])
    if (m !== null && i >= 2 && (m[1].includes(".") || m[1].includes("_") || TOP_LEVEL.has(m[1]))) {
      if (m[2] !== undefined) overrides[m[1]] = m[2]
      else overrides[m[1]] = argv[++i] ?? ""
    } else rest.push(argv[i])
  }
  return { argv: rest, overrides }
}

/** preset → config file → dotted flags, each checked against the schema. */
export const buildConfig = (options: { preset: string; configFile?: string; overrides: Record<string, string> }): Either.Either<RunConfig, ConfigError> => {
  let preset = options.preset
  const layers: Array<{ source: string; values: Record<string, unknown> }> = []
  if (options.configFile !== undefined) {
    const file = readConfigFile(options.configFile)
    if (Either.isLeft(file)) return Either.left(file.left)
    preset = file.right.preset
    layers.push({ source: options.configFile, values: file.right.values })
  }
  layers.push({ source: "command line", values: options.overrides })
  return resolveConfig(PRESETS[preset] ?? PRESETS.small, layers)
}

const flat = (value: unknown, prefix = ""): Array<[string, unknown]> =>
  typeof value === "object" && value !== null && !Array.isArray(value)
    ? Object.entries(value).flatMap(([k, v]) => flat(v, prefix === "" ? k : `${prefix}.${k}`))
    : [[prefix, value]]

/** The dotted flags a command takes, with the `small` preset's values, for `--help`. */
export const overridesHelp = (): string =>
  `Config keys as dotted flags (--key=value; values of the small preset shown; out-of-range values are refused at start-up): ${
    flat(PRESETS.small)
      .map(([k, v]) => `--${k}=${JSON.stringify(v)}`)
      .join(" ")
  }`
