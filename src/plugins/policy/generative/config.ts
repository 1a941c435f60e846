import { Either, ParseResult, Schema } from "effect"
import type { NetworkShape } from "./model.ts"
import { GENERATIVE_DEFAULTS } from "./settings.ts"

/** The generative policy's configuration: its architecture, what a checkpoint stores, and the network shape they give. */

export const POLICY_NAME = "generative"

const PositiveInt = Schema.Int.pipe(Schema.positive())

/** The network's architecture, as a checkpoint stores it (a run sets it in policy_config, see settings.ts). */
export const GenerativeArchitecture = Schema.Struct({
  width: PositiveInt,
  heads: PositiveInt,
  encoder_layers: Schema.Int.pipe(Schema.nonNegative()),
  decoder_layers: PositiveInt,
  prompt_tokens: PositiveInt,
  answer_tokens: PositiveInt,
  image_side: PositiveInt,
  patch: PositiveInt,
  /** The copy head (model.ts); a checkpoint written before it existed has none. */
  copy: Schema.optionalWith(Schema.Boolean, { default: () => false })
})
export type GenerativeArchitecture = typeof GenerativeArchitecture.Type

export const DEFAULT_ARCHITECTURE: GenerativeArchitecture = { ...GENERATIVE_DEFAULTS, patch: 8 }

/** What a checkpoint of this policy stores: the architecture, the tokenizer's vocabulary and the thought weight. */
export const GenerativeConfigSchema = Schema.Struct({
  architecture: GenerativeArchitecture,
  vocabulary: Schema.Array(Schema.String),
  thought_prob_coef: Schema.Number
})
export type GenerativeConfig = typeof GenerativeConfigSchema.Type

export const storedConfig = (policy: { readonly name: string; readonly config: unknown }): Either.Either<GenerativeConfig, string> =>
  policy.name !== POLICY_NAME
    ? Either.left(`it holds a "${policy.name}" policy, not ${POLICY_NAME}`)
    : Either.mapLeft(
      Schema.decodeUnknownEither(GenerativeConfigSchema)(policy.config),
      (e) => `its policy config is not this version's: ${ParseResult.TreeFormatter.formatErrorSync(e)}`
    )

/** Checks what the network needs of an architecture; a RangeError names the key. */
export const checkArchitecture = (a: GenerativeArchitecture): void => {
  if (a.width % a.heads !== 0) throw new RangeError(`policy_config.width (${a.width}) must be a multiple of policy_config.heads (${a.heads})`)
  if (a.image_side % a.patch !== 0) throw new RangeError(`policy_config.image_side (${a.image_side}) must be a multiple of policy_config.patch (${a.patch})`)
  if (a.prompt_tokens < 2) throw new RangeError(`policy_config.prompt_tokens (${a.prompt_tokens}) must be at least 2`)
}

export const shapeOf = (c: GenerativeConfig): NetworkShape => ({
  vocab: c.vocabulary.length,
  width: c.architecture.width,
  heads: c.architecture.heads,
  encoderLayers: c.architecture.encoder_layers,
  decoderLayers: c.architecture.decoder_layers,
  promptTokens: c.architecture.prompt_tokens,
  answerTokens: c.architecture.answer_tokens,
  imageSide: c.architecture.image_side,
  patch: c.architecture.patch,
  copy: c.architecture.copy
})
