import { Schema } from "effect"

/**
 * The environment's settings, under the reference's names (rl/configs/llama_virl_vl.yaml).
 * Defaults are the reference's training config; the fixes of its quirks are off by default.
 */
export const VirlEnvConfig = Schema.Struct({
  relocation: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  drop_rate: Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 1)), { default: () => 0.5 }),
  straight_line_length: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 5 }),
  absolute_action: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  verify_iter: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 2 }),
  resolution: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 1200 }),
  language_only: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** Gymnasium registration of gym_virl/Navigation-v0. */
  max_episode_steps: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 300 }),
  /** MAPPING_RADIUS in metres. */
  mapping_radius: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { default: () => 20 }),
  view_size: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 640 }),
  fov: Schema.optionalWith(Schema.Number.pipe(Schema.between(10, 120)), { default: () => 90 }),
  /** Fix: classify turns on the heading difference wrapped to ±180 (the reference does not wrap). */
  wrap_turns: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /**
   * Not the reference: word each episode's instructions in one of several phrasings (drawn from a
   * generator of its own, so the reference's draws are untouched). For pretraining a base model.
   */
  instruction_variants: Schema.optionalWith(Schema.Boolean, { default: () => false })
}).annotations({ identifier: "VirlEnvConfig" })
export type VirlEnvConfig = typeof VirlEnvConfig.Type

export const defaultConfig = (overrides: Partial<typeof VirlEnvConfig.Encoded> = {}): VirlEnvConfig =>
  Schema.decodeUnknownSync(VirlEnvConfig, { onExcessProperty: "error" })(overrides)
