import { Effect, Either } from "effect"
import { PolicyError, type PolicyInput, type PolicyService } from "../../../core/policy.ts"
import { readFeatures } from "./features.ts"
import { parameterSpecs } from "./model.ts"
import { storedConfig } from "./policy.ts"

/** The shape of each parameter of a stored tfjs policy (its dense weights are [in, out]: y = x·W + b). */
export const parameterShapes = (policy: { readonly name: string; readonly config: unknown }): Either.Either<Map<string, number[]>, string> =>
  Either.map(storedConfig(policy), (c) => new Map(parameterSpecs(c.model).map((s) => [s.name, [...s.shape]])))

/**
 * What the policy reads and answers on some inputs, for checking a port of the model (e.g.
 * bench/torch_load.py): each input's features as the model sees them (hashed word ids and their
 * slots, one-hot counts, the small image, how many sentences, actions and descriptions it lists)
 * and the policy's probabilities of each part at temperature 1 and its value.
 */
export interface Probe {
  readonly inputs: ReadonlyArray<{
    readonly words: ReadonlyArray<number>
    readonly offsets: ReadonlyArray<number>
    readonly counts: ReadonlyArray<number>
    readonly image: ReadonlyArray<number>
    readonly sentences: number
    readonly actions: number
    readonly observations: number
  }>
  readonly expected: ReadonlyArray<{
    readonly action: ReadonlyArray<number>
    readonly instruction: ReadonlyArray<number>
    readonly observation: ReadonlyArray<number>
    readonly value: number
  }>
}

export const probe = (policy: PolicyService, inputs: ReadonlyArray<PolicyInput>): Effect.Effect<Probe, PolicyError> =>
  Effect.gen(function*() {
    const config = storedConfig({ name: policy.name, config: policy.config })
    if (Either.isLeft(config) || policy.distributions === undefined) {
      return yield* new PolicyError({ message: `cannot probe policy ${policy.name}: ${Either.isLeft(config) ? config.left : "it has no distributions"}` })
    }
    const distributions = yield* policy.distributions(inputs, { temperature: 1 })
    const outputs = yield* policy.act(inputs, { temperature: 1, greedy: true })
    return {
      inputs: inputs.map((input) => {
        const f = readFeatures(input, config.right.model.shape)
        return {
          words: [...f.words],
          offsets: [...f.offsets],
          counts: [...f.counts],
          image: [...f.image],
          sentences: f.sentences.length,
          actions: f.actions.length,
          observations: f.observations.length
        }
      }),
      expected: distributions.map((d, i) => ({
        action: d.parts.action.map(Math.exp),
        instruction: d.parts.instruction.map(Math.exp),
        observation: d.parts.observation.map(Math.exp),
        value: outputs[i].value
      }))
    }
  })
