import { Data, Either, ParseResult, Schema } from "effect"
import * as fs from "node:fs"
import YAML from "yaml"
import { OptimizerSettings } from "../core/optimizer.ts"
import { GenerationSettings, PpoSettings, ReturnSettings } from "../core/ppo.ts"
import { VirlEnvSettings } from "../plugins/environment/virl/config.ts"
import { PolicyArchitecture } from "../plugins/policy/tfjs/architecture.ts"
import { GENERATIVE_DEFAULTS, GenerativeSettings } from "../plugins/policy/generative/settings.ts"
import { atLeast, nonNegative, positive, rate } from "../core/settings-schema.ts"

/**
 * A run's whole configuration, with the reference's key names (rl/configs/llama_virl_vl.yaml)
 * where it has them. `small` (the default) is what the small TensorFlow.js policy needs to learn
 * on a laptop CPU; `paper` carries the paper's values for a 11B-parameter VLM (spec §10).
 */

export const RunConfig = Schema.Struct({
  seed: Schema.Number,
  /** Environments stepped in lock-step (the reference's num_processes is 1). */
  num_processes: atLeast(1),
  num_steps: atLeast(1),
  num_updates: atLeast(0),
  grad_accum_steps: atLeast(1),
  save_every: atLeast(1),
  /**
   * The policy's tensor backend: auto (a native tfjs-node if installed, else wasm, else cpu), wasm,
   * cpu, native, webgpu — or several, comma-separated, tried in order (webgpu,wasm: fall back).
   */
  backend: Schema.String.pipe(
    Schema.pattern(/^(auto|wasm|cpu|native|webgpu)(,(auto|wasm|cpu|native|webgpu))*$/, {
      message: () => "must be auto, wasm, cpu, native or webgpu, or several of them comma-separated (tried in order)"
    })
  ),
  /**
   * Where a run's environments are stepped: null (the experiment's Sharding layer; local by
   * default), local, workers (threads, one per core but one) or workers:N. Results do not depend on it.
   */
  sharding: Schema.NullOr(
    Schema.String.pipe(
      Schema.pattern(/^(local|workers(:[1-9][0-9]*)?)$/, {
        message: () => "must be local, workers or workers:N (N threads); cluster is for `virl sweep` and `virl eval` (jobs on `virl runner`s)"
      })
    )
  ),
  optimizer_config: OptimizerSettings,
  ppo_config: PpoSettings,
  compute_return_kwargs: ReturnSettings,
  generation_config: GenerationSettings,
  env_config: Schema.Struct({
    ...VirlEnvSettings.fields,
    /**
     * The reference's key: true/false picks the absolute/relative ActionSpace layer for training
     * (over the arm's and experiment's layers); null (the default) leaves the choice to the layers.
     */
    absolute_action: Schema.NullOr(Schema.Boolean)
  }),
  policy_config: Schema.Struct({ ...PolicyArchitecture.fields, ...GenerativeSettings.fields }),
  sft_config: Schema.Struct({
    epochs: atLeast(0),
    batch_size: atLeast(1),
    passes: atLeast(1),
    /** Training routes used for demonstrations (0: all of them). */
    routes: atLeast(0),
    init_lr: nonNegative,
    end_lr: nonNegative,
    max_grad_norm: nonNegative,
    temperature: positive
  }),
  /** The base model (`pretrain` arms): behaviour cloning on a broad mixture the study holds out of post-training. */
  pretrain_config: Schema.Struct({
    /** City styles in the mixture (`varied:N`, never the nyc or sf look) and routes of each. */
    styles: atLeast(1),
    routes: atLeast(1),
    first_style: atLeast(0),
    /** Episodes per route under each rule set (absolute and relative directions). */
    passes: atLeast(1),
    /**
     * The share of the mixture's routes the base also drives under relative directions (spread
     * evenly over the styles, each style's first routes). 0 makes a base that never answered in
     * relative directions, so that the rule-OOD suite tests a rule it knows only from the words
     * of its instructions.
     */
    relative_share: Schema.optionalWith(rate, { default: () => 1 }),
    /** Word the instructions in several phrasings. */
    instruction_variants: Schema.Boolean,
    /** "varied": describe observations in several correct ways (a pretrained model's own words); "oracle": the environment's one text. */
    descriptions: Schema.Literal("varied", "oracle"),
    /**
     * "json": the base answers in the task's format; "sentences": in plain sentences (the same
     * observation, instruction and action, no JSON, so the environment's parser finds no action):
     * a base that does not know the format, for RL without a format teacher. A policy that only
     * chooses among listed answers cannot write them: it needs the generative policy.
     */
    answer_format: Schema.optionalWith(Schema.Literal("json", "sentences"), { default: () => "json" as const }),
    epochs: atLeast(1),
    batch_size: atLeast(1),
    init_lr: nonNegative,
    end_lr: nonNegative,
    max_grad_norm: nonNegative,
    /** The base's own seed: one base serves every seed of a run, as one pretrained model would. */
    seed: Schema.Number
  }),
  /** KL(base ‖ policy) at each evaluation point, on states of this many NYC training routes (oracle trajectories). */
  kl_config: Schema.Struct({
    routes: atLeast(1),
    /**
     * Both distributions at this temperature; null: at the arm's sampling temperature
     * (generation_config.temperature). Arms that sample at different temperatures need one
     * here for their KLs to be comparable.
     */
    temperature: Schema.optionalWith(Schema.NullOr(positive), { default: () => null })
  }),
  eval_config: Schema.Struct({
    /** Episodes of the in-distribution and rule-OOD suites (the scripts' 48). */
    num_traj: atLeast(1),
    /** Episodes of the visual-OOD suite (the 18 SF routes). */
    num_traj_visual: atLeast(1),
    /** true: route i for episode i; false: routes drawn by the generator, as the scripts run. */
    order: Schema.Boolean,
    greedy: Schema.Boolean,
    seed: Schema.Number,
    /**
     * Episodes an evaluation plays at once (at most its episode count): one policy call answers
     * them all. Results do not depend on it — episodes start in order and draw from the suite's
     * generator in that order — only the speed does (the reference plays num_processes at once).
     */
    num_envs: Schema.optionalWith(atLeast(1), { default: () => 128 })
  })
})
export type RunConfig = typeof RunConfig.Type

const small: RunConfig = {
  seed: 42,
  num_processes: 8,
  num_steps: 256,
  num_updates: 15,
  grad_accum_steps: 1,
  save_every: 5,
  backend: "auto",
  sharding: null,
  optimizer_config: { init_lr: 3e-4, end_lr: 3e-5, lr_max_steps: 400, eps: 1e-7, weight_decay: 0, beta1: 0.9, beta2: 0.999 },
  ppo_config: { clip_param: 0.1, ppo_epoch: 4, mini_batch_size: 32, value_loss_coef: 0.5, entropy_coef: 0.01, entropy_bonus: false, max_grad_norm: 1 },
  compute_return_kwargs: { gamma: 0.9, gae_lambda: 0.95, use_proper_time_limits: false },
  generation_config: { temperature: 1, thought_prob_coef: 0.5 },
  env_config: {
    resolution: 32,
    verify_iter: 2,
    relocation: true,
    drop_rate: 0.5,
    straight_line_length: 5,
    view_size: 96,
    fov: 90,
    mapping_radius: 20,
    max_episode_steps: 300,
    wrap_turns: false,
    language_only: false,
    absolute_action: null
  },
  policy_config: { embedding: 96, hidden: 192, patch: 8, patch_features: 48, ...GENERATIVE_DEFAULTS },
  sft_config: { epochs: 15, batch_size: 32, passes: 1, routes: 128, init_lr: 3e-3, end_lr: 3e-4, max_grad_norm: 1, temperature: 1 },
  pretrain_config: {
    styles: 12,
    routes: 24,
    first_style: 1000,
    passes: 1,
    relative_share: 1,
    instruction_variants: true,
    descriptions: "varied",
    answer_format: "json",
    epochs: 8,
    batch_size: 128,
    init_lr: 2e-3,
    end_lr: 2e-4,
    max_grad_norm: 1,
    seed: 0
  },
  kl_config: { routes: 24, temperature: null },
  eval_config: { num_traj: 48, num_traj_visual: 18, order: true, greedy: true, seed: 12, num_envs: 128 }
}

const paper: RunConfig = {
  ...small,
  num_processes: 1,
  num_steps: 256,
  num_updates: 15,
  grad_accum_steps: 128,
  save_every: 1,
  optimizer_config: { init_lr: 1e-7, end_lr: 1e-9, lr_max_steps: 100, eps: 1e-7, weight_decay: 0, beta1: 0.9, beta2: 0.999 },
  ppo_config: { ...small.ppo_config, mini_batch_size: 1, max_grad_norm: 0.01 },
  generation_config: { temperature: 0.2, thought_prob_coef: 0.5 },
  env_config: { ...small.env_config, resolution: 1200, view_size: 640 }
}

export const PRESETS: Readonly<Record<string, RunConfig>> = { small, paper }

export class ConfigError extends Data.TaggedError("ConfigError")<{ readonly source: string; readonly message: string }> {
  override toString(): string {
    return `${this.source}: ${this.message}`
  }
}

/** Every dotted key of a config, e.g. `ppo_config.clip_param`. */
export const dottedKeys = (value: unknown, prefix = ""): string[] =>
  typeof value === "object" && value !== null && !Array.isArray(value)
    ? Object.entries(value).flatMap(([k, v]) => dottedKeys(v, prefix === "" ? k : `${prefix}.${k}`))
    : [prefix]

const editDistance = (a: string, b: string): number => {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0][j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
  }
  return d[a.length][b.length]
}

/** The valid keys closest to an unknown one, for the error message. */
export const nearestKeys = (key: string, valid: ReadonlyArray<string>, count = 3): string[] => {
  const leaf = key.split(".").pop() ?? key
  return [...valid]
    .map((k) => ({ k, d: Math.min(editDistance(key, k), editDistance(leaf, k.split(".").pop() ?? k) + 1) }))
    .sort((a, b) => a.d - b.d || a.k.localeCompare(b.k))
    .slice(0, count)
    .map((x) => x.k)
}

const parseValue = (text: string): unknown => {
  if (text === "true" || text === "false") return text === "true"
  if (text !== "" && !Number.isNaN(Number(text))) return Number(text)
  return text
}

const setDotted = (target: Record<string, unknown>, key: string, value: unknown): void => {
  const parts = key.split(".")
  let node = target
  for (const p of parts.slice(0, -1)) node = node[p] as Record<string, unknown>
  node[parts[parts.length - 1]] = value
}

const structuredCloneConfig = (c: RunConfig): Record<string, unknown> => JSON.parse(JSON.stringify(c)) as Record<string, unknown>

/**
 * Applies overrides (`{ "ppo_config.clip_param": "0.2" }` or nested objects from YAML) to a
 * base, checking every key against the schema: an unknown key names the nearest valid ones.
 */
export const resolveConfig = (
  base: RunConfig,
  overrides: ReadonlyArray<{ readonly source: string; readonly values: Readonly<Record<string, unknown>> }>
): Either.Either<RunConfig, ConfigError> => {
  const valid = dottedKeys(base)
  const out = structuredCloneConfig(base)
  for (const { source, values } of overrides) {
    for (const [key, raw] of Object.entries(values)) {
      const nested = typeof raw === "object" && raw !== null && !Array.isArray(raw)
      const pairs = nested
        ? dottedKeys(raw, key).map((k) => [k, k.split(".").slice(key.split(".").length).reduce((o: any, p) => o[p], raw)] as const)
        : [[key, raw] as const]
      for (const [k, v] of pairs) {
        if (!valid.includes(k)) {
          return Either.left(new ConfigError({ source, message: `unknown key ${JSON.stringify(k)}; did you mean ${nearestKeys(k, valid).join(", ")}?` }))
        }
        setDotted(out, k, typeof v === "string" ? parseValue(v) : v)
      }
    }
  }
  const decoded = Schema.decodeUnknownEither(RunConfig)(out)
  return Either.mapLeft(
    decoded,
    (e) =>
      new ConfigError({
        source: overrides.map((o) => o.source).join(" + ") || "config",
        // one line per wrong key: its dotted name and what it must be
        message: ParseResult.ArrayFormatter.formatErrorSync(e).map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")
      })
  )
}

/** A YAML config file: a preset name under `preset:` (default small) and any keys to change. */
export const readConfigFile = (file: string): Either.Either<{ preset: string; values: Record<string, unknown> }, ConfigError> => {
  let parsed: unknown
  try {
    parsed = YAML.parse(fs.readFileSync(file, "utf8"))
  } catch (e) {
    return Either.left(new ConfigError({ source: file, message: `cannot read YAML: ${(e as Error).message}` }))
  }
  if (typeof parsed !== "object" || parsed === null) return Either.left(new ConfigError({ source: file, message: "expected a mapping of config keys" }))
  const { preset, ...values } = parsed as Record<string, unknown>
  if (preset !== undefined && (typeof preset !== "string" || PRESETS[preset] === undefined)) {
    return Either.left(new ConfigError({ source: file, message: `preset must be one of ${Object.keys(PRESETS).join(", ")}` }))
  }
  return Either.right({ preset: (preset as string | undefined) ?? "small", values })
}
