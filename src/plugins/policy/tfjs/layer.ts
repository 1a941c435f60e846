import { Effect, Either, Layer } from "effect"
import { Policy, PolicyError, type PolicySettings } from "../../../core/policy.ts"
import { make as makeBackend } from "./backend.ts"
import type { ModelConfig } from "./model.ts"
import { defaultPolicyConfig, make, POLICY_NAME, storedConfig, type TfPolicyConfig } from "./policy.ts"

export { type BagsOn, defaultPolicyConfig, make, POLICY_NAME, storedConfig, type TfPolicyConfig } from "./policy.ts"

/** Architecture overrides a layer carries over the run's `policy_config` (a policy swap in one line). */
export interface Architecture {
  readonly embedding?: number
  readonly hidden?: number
  readonly patch?: number
  readonly patch_features?: number
}

const ARCHITECTURE_KEYS = ["embedding", "hidden", "patch", "patch_features"] as const

/** The model of a run's `policy_config` with `overrides` on top. */
export const architectureOf = (policyConfig: Readonly<Record<string, unknown>>, overrides: Architecture = {}): Partial<Omit<ModelConfig, "shape">> => {
  const merged: Record<string, unknown> = { ...policyConfig, ...overrides }
  const out: Record<string, number> = {}
  for (const key of ARCHITECTURE_KEYS) {
    const v = merged[key]
    if (v === undefined) continue
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
      throw new PolicyError({ message: `policy_config.${key}: ${JSON.stringify(v)} is not a positive integer` })
    }
    out[key === "patch_features" ? "patchFeatures" : key] = v
  }
  return out
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
            catch: (e) => (e instanceof PolicyError ? e : new PolicyError({ message: `policy_config: ${String(e)}` }))
          })
          : yield* Either.match(storedConfig(stored), {
            onLeft: (why) => Effect.fail(new PolicyError({ message: `checkpoint ${stored.path} cannot be loaded: ${why}` })),
            onRight: (c) => Effect.succeed({ ...c, thought_prob_coef: settings.thought_prob_coef })
          })
        const policy = yield* Effect.try({
          try: () => make(backend.tf, config, rng, stored?.parameters),
          catch: (e) =>
            new PolicyError({ message: `${stored === undefined ? "" : `checkpoint ${stored.path}: `}${e instanceof PolicyError ? e.message : String(e)}` })
        })
        return { ...policy, device: backend.name }
      })
  })
