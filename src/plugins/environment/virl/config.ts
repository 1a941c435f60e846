import { Schema } from "effect"
import { atLeast, positive, range, rate } from "../../../core/settings-schema.ts"

/**
 * What a run sets of the environment (its `env_config`, app/config.ts), each with its range: the
 * one declaration of these keys; VirlEnvConfig adds the reference's defaults and its own keys.
 */
export const VirlEnvSettings = Schema.Struct({
  resolution: atLeast(8),
  verify_iter: atLeast(0),
  relocation: Schema.Boolean,
  drop_rate: rate,
  straight_line_length: atLeast(1),
  /** Side of each perspective view before it is resized to `resolution` (the reference's 640). */
  view_size: atLeast(8),
  fov: range(10, 120),
  /** MAPPING_RADIUS in metres. */
  mapping_radius: positive,
  /** Gymnasium registration of gym_virl/Navigation-v0. */
  max_episode_steps: atLeast(1),
  /** Fix: classify turns on the heading difference wrapped to ±180 (the reference does not wrap). */
  wrap_turns: Schema.Boolean,
  /**
   * V-IRL-L: the prompt's language-only template, whose observations are written out as text,
   * and no image (the reference's `language_only`).
   */
  language_only: Schema.Boolean
})

const f = VirlEnvSettings.fields

/**
 * The environment's settings, under the reference's names (rl/configs/llama_virl_vl.yaml).
 * Defaults are the reference's training config; the fixes of its quirks are off by default.
 */
export const VirlEnvConfig = Schema.Struct({
  relocation: Schema.optionalWith(f.relocation, { default: () => true }),
  drop_rate: Schema.optionalWith(f.drop_rate, { default: () => 0.5 }),
  straight_line_length: Schema.optionalWith(f.straight_line_length, { default: () => 5 }),
  absolute_action: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  verify_iter: Schema.optionalWith(f.verify_iter, { default: () => 2 }),
  resolution: Schema.optionalWith(f.resolution, { default: () => 1200 }),
  language_only: Schema.optionalWith(f.language_only, { default: () => false }),
  max_episode_steps: Schema.optionalWith(f.max_episode_steps, { default: () => 300 }),
  mapping_radius: Schema.optionalWith(f.mapping_radius, { default: () => 20 }),
  view_size: Schema.optionalWith(f.view_size, { default: () => 640 }),
  fov: Schema.optionalWith(f.fov, { default: () => 90 }),
  wrap_turns: Schema.optionalWith(f.wrap_turns, { default: () => false }),
  /**
   * Not the reference: word each episode's instructions in one of several phrasings (drawn from a
   * generator of its own, so the reference's draws are untouched). For pretraining a base model.
   */
  instruction_variants: Schema.optionalWith(Schema.Boolean, { default: () => false })
}).annotations({ identifier: "VirlEnvConfig" })
export type VirlEnvConfig = typeof VirlEnvConfig.Type

export const defaultConfig = (overrides: Partial<typeof VirlEnvConfig.Encoded> = {}): VirlEnvConfig =>
  Schema.decodeUnknownSync(VirlEnvConfig, { onExcessProperty: "error" })(overrides)
