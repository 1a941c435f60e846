import { Schema } from "effect"
import { atLeast } from "../../../core/settings-schema.ts"

/**
 * The generative policy's keys in a run's `policy_config`, beside the tfjs policy's (each policy
 * reads its own; `patch`, the side of the image patches, is shared). The presets hold
 * DEFAULT_ARCHITECTURE's values (policy.ts); a layer's own overrides win over them.
 */
export const GenerativeSettings = Schema.Struct({
  /** Width of the token embeddings and of every block. */
  width: atLeast(1),
  /** Attention heads (the width must be a multiple). */
  heads: atLeast(1),
  /** Self-attention blocks over the prompt and the image before the decoder reads them. */
  encoder_layers: atLeast(0),
  decoder_layers: atLeast(1),
  /** Prompt tokens read: a longer prompt keeps its first and last halves. */
  prompt_tokens: atLeast(2),
  /** Answer tokens written at most, the end token included. */
  answer_tokens: atLeast(2),
  /** Side of the square the grid image is averaged down to (a multiple of `patch`). */
  image_side: atLeast(1),
  /**
   * A copy head: the answer's next token may be copied from the prompt (as written, or without
   * the space before it) as well as generated from the vocabulary — how the paper's model
   * writes an instruction's sentence or direction back.
   */
  copy: Schema.Boolean
})
export type GenerativeSettings = typeof GenerativeSettings.Type

/** The presets' values (the generative policy's default architecture, `patch` 8 aside). */
export const GENERATIVE_DEFAULTS: GenerativeSettings = {
  width: 64,
  heads: 4,
  encoder_layers: 1,
  decoder_layers: 2,
  prompt_tokens: 512,
  answer_tokens: 96,
  image_side: 32,
  copy: true
}
