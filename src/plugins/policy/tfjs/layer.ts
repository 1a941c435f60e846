import { policyFrom, storedPolicyConfig } from "../service.ts"
import { Effect, Either, Layer, ParseResult, Schema } from "effect"
import { Policy, PolicyError, type PolicySettings } from "../../../core/policy.ts"
import { type Architecture, PolicyArchitecture } from "./architecture.ts"
import { make as makeBackend } from "./backend.ts"
import type { ModelConfig } from "./model.ts"
import { defaultPolicyConfig, make, POLICY_NAME, storedConfig, type TfPolicyConfig } from "./policy.ts"

export { type Architecture } from "./architecture.ts"
export { type BagsOn, defaultPolicyConfig, make, POLICY_NAME, storedConfig, type TfPolicyConfig } from "./policy.ts"

/** The model of a run's `policy_config` with `overrides` on top; a width that is not a positive integer is a RangeError naming it. */
export const architectureOf = (policyConfig: Readonly<Record<string, unknown>>, overrides: Architecture = {}): Partial<Omit<ModelConfig, "shape">> => {
  const decoded = Schema.decodeUnknownEither(Schema.partialWith(PolicyArchitecture, { exact: true }))({ ...policyConfig, ...overrides })
  if (Either.isLeft(decoded)) throw new RangeError(`policy_config: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`)
  const { patch_features, ...rest } = decoded.right
  return { ...rest, ...(patch_features === undefined ? {} : { patchFeatures: patch_features }) }
}

/** The configuration of a fresh policy for a run's settings (and a layer's overrides). */
export const policyConfigOf = (settings: PolicySettings, overrides: Architecture = {}): TfPolicyConfig => ({
  ...defaultPolicyConfig(architectureOf(settings.policy_config, overrides)),
  thought_prob_coef: settings.thought_prob_coef
})

/**
 * The tfjs vision-language policy as the run's policy (the default), optionally at another size:
 * fresh from `policy_config` (+ `overrides`), or loaded with the architecture a checkpoint stores.
 */
export const layer = (overrides: Architecture = {}) =>
  Layer.succeed(Policy, {
    name: POLICY_NAME,
    ...(Object.keys(overrides).length === 0 ? {} : { key: JSON.stringify(overrides) }),
    make: (settings, rng, stored) =>
      Effect.gen(function*() {
        const backend = yield* makeBackend(settings.backend)
        const config: TfPolicyConfig = stored === undefined
          ? yield* Effect.try({
            try: () => policyConfigOf(settings, overrides),
            catch: (e) => new PolicyError({ message: e instanceof Error ? e.message : String(e) })
          })
          : yield* storedPolicyConfig(stored, storedConfig(stored), settings.thought_prob_coef)
        const policy = yield* policyFrom(stored, () => make(backend.tf, config, rng, stored?.parameters))
        return { ...policy, device: backend.name }
      })
  })
