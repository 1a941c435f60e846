import { Context, Either, Layer, Option, SchemaAST } from "effect"
import { type ConfigError, PRESETS, readConfigFile, resolveConfig, RunConfig } from "../app/config.ts"

/**
 * Config overrides are dotted flags (`--ppo_config.clip_param=0.2`, `--seed=7`), taken out of
 * argv before @effect/cli parses the rest, for the commands that take config (CONFIG_COMMANDS): a
 * flag whose name has a dot or an underscore, or is a top-level config key, is an override; CLI
 * options use hyphens. Other commands parse all their flags themselves.
 */
const TOP_LEVEL = new Set(Object.keys(RunConfig.fields))

/** The dotted overrides of this process's command line, taken out by main before @effect/cli parses the rest. */
export class CommandLine extends Context.Tag("virl/CommandLine")<CommandLine, { readonly overrides: Readonly<Record<string, string>> }>() {
  static readonly layer = (overrides: Readonly<Record<string, string>>) => Layer.succeed(CommandLine, { overrides })
}

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
export const buildConfig = (
  options: { preset: string; configFile?: string; overrides: Readonly<Record<string, string>> }
): Either.Either<RunConfig, ConfigError> => {
  let preset = options.preset
  const layers: Array<{ source: string; values: Readonly<Record<string, unknown>> }> = []
  if (options.configFile !== undefined) {
    const file = readConfigFile(options.configFile)
    if (Either.isLeft(file)) return Either.left(file.left)
    preset = file.right.preset
    layers.push({ source: options.configFile, values: file.right.values })
  }
  layers.push({ source: "command line", values: options.overrides })
  return resolveConfig(PRESETS[preset] ?? PRESETS.small, layers)
}

/** What a schema allows, in words: its refinements' messages, its literals, its kind. */
const allowed = (ast: SchemaAST.AST): string => {
  switch (ast._tag) {
    case "Refinement": {
      const message = SchemaAST.getMessageAnnotation(ast)
      if (Option.isSome(message)) {
        const text = message.value(undefined as never)
        if (typeof text === "string") return text.replace(/^must be /, "")
      }
      return allowed(ast.from)
    }
    case "Transformation":
      return allowed(ast.to)
    case "Union": {
      const literals = ast.types.filter((t) => t._tag === "Literal").map((t) => String((t as SchemaAST.Literal).literal))
      const others = ast.types.filter((t) => t._tag !== "Literal").map(allowed)
      return [...others, ...(literals.length === 0 ? [] : [`${others.length === 0 ? "" : "or "}${literals.join(", ")}`])].join(" ")
    }
    case "Literal":
      return String(ast.literal)
    case "BooleanKeyword":
      return "true or false"
    case "NumberKeyword":
      return "a number"
    case "StringKeyword":
      return "text"
    default:
      return ""
  }
}

/** Every leaf key of a struct schema with what it allows. */
const leaves = (ast: SchemaAST.AST, prefix = ""): Array<{ readonly key: string; readonly allows: string }> => {
  const node = ast._tag === "Transformation" ? ast.to : ast
  if (node._tag !== "TypeLiteral") return [{ key: prefix, allows: allowed(ast) }]
  return node.propertySignatures.flatMap((p) => leaves(p.type, prefix === "" ? String(p.name) : `${prefix}.${String(p.name)}`))
}

const valueAt = (config: unknown, key: string): unknown => key.split(".").reduce((o: any, k) => o?.[k], config)

/**
 * The dotted flags a command takes for `--help`, a line each, grouped by section: the `small`
 * preset's value and what the schema allows (enums' values, numbers' ranges).
 */
export const overridesHelp = (): string => {
  const keys = leaves(RunConfig.ast)
  const width = Math.max(...keys.map(({ key }) => `--${key}=${JSON.stringify(valueAt(PRESETS.small, key))}`.length)) + 2
  const lines: string[] = [
    "Config keys as dotted flags (--key=value), each shown with the small preset's value and what it allows; a value out of range is refused at start-up:"
  ]
  let section = ""
  for (const { key, allows } of keys) {
    const top = key.includes(".") ? key.split(".")[0]! : ""
    if (top !== section) lines.push("", `${top}:`)
    section = top
    lines.push(`  ${`--${key}=${JSON.stringify(valueAt(PRESETS.small, key))}`.padEnd(width)}${allows}`)
  }
  return lines.join("\n")
}
