import { Schema } from "effect"
import { atLeast } from "../../../core/settings-schema.ts"

/** The tfjs policy's widths (a run's `policy_config`, a layer's overrides), each a positive integer. */
export const PolicyArchitecture = Schema.Struct({
  /** Width of the word table and every text embedding. */
  embedding: atLeast(1),
  /** Width of the joint state and the context and value layers. */
  hidden: atLeast(1),
  /** Side of the image patches, in pixels. */
  patch: atLeast(1),
  /** Features of each image patch. */
  patch_features: atLeast(1)
})

/** Architecture overrides a layer carries over the run's `policy_config` (a policy swap in one line). */
export type Architecture = Partial<typeof PolicyArchitecture.Type>
