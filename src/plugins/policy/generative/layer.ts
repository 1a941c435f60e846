import { policyFrom, storedPolicyConfig } from "../service.ts"
import { Effect, Layer, ParseResult, Schema } from "effect"
import { Policy, PolicyError } from "../../../core/policy.ts"
import { make as makeBackend } from "../tfjs/backend.ts"
import { DEFAULT_ARCHITECTURE, GenerativeArchitecture, type GenerativeConfig, POLICY_NAME, storedConfig } from "./config.ts"
import { make } from "./policy.ts"
import { defaultVocabulary } from "./tokenizer.ts"

export { DEFAULT_ARCHITECTURE, type GenerativeArchitecture, POLICY_NAME } from "./config.ts"

/** The architecture keys a run's `policy_config` sets (settings.ts), `patch` included. */
const fromRun = (policyConfig: Readonly<Record<string, unknown>>): Partial<GenerativeArchitecture> =>
  Object.fromEntries(Object.keys(DEFAULT_ARCHITECTURE).filter((k) => policyConfig[k] !== undefined).map((k) => [k, policyConfig[k]]))

/**
 * The generative policy as the run's policy (`layers: { policy: Generative.layer() }`): a small
 * transformer that writes its answers (policy.ts), at the default architecture or with
 * the run's `policy_config` keys (settings.ts) and then `architecture`'s changed. A checkpoint of it loads with the architecture and vocabulary it
 * stores. It runs on the run's tfjs backend (wasm on a CPU).
 */
export const layer = (architecture: Partial<GenerativeArchitecture> = {}) =>
  Layer.succeed(Policy, {
    name: POLICY_NAME,
    key: JSON.stringify({ generative: architecture }),
    make: (settings, rng, stored) =>
      Effect.gen(function*() {
        const backend = yield* makeBackend(settings.backend)
        const config: GenerativeConfig = stored === undefined
          ? {
            architecture: yield* Schema.decodeUnknown(GenerativeArchitecture)({ ...DEFAULT_ARCHITECTURE, ...fromRun(settings.policy_config), ...architecture })
              .pipe(
                Effect.mapError((e) => new PolicyError({ message: `generative policy: ${ParseResult.TreeFormatter.formatErrorSync(e)}` }))
              ),
            vocabulary: defaultVocabulary(),
            thought_prob_coef: settings.thought_prob_coef
          }
          : yield* storedPolicyConfig(stored, storedConfig(stored), settings.thought_prob_coef)
        const policy = yield* policyFrom(stored, () => make(backend.tf, config, rng, stored?.parameters))
        return { ...policy, device: backend.name }
      })
  })
