import { Effect } from "effect"
import { Environment } from "../core/environment.ts"
import { type KlSummary, meanKl } from "../core/kl.ts"
import { type OutputDistribution, PolicyError, type PolicyInput, type PolicyService } from "../core/policy.ts"
import { oracle } from "../plugins/policy/oracle.ts"
import type { RunConfig } from "./config.ts"
import { environmentLayer } from "./services.ts"

/**
 * The inputs RL's Razor measures forgetting on: states of the post-training task itself — here
 * every step of the oracle's trajectories on the first `kl_config.routes` training routes
 * (under the context's action space: the training rules; the environment's generator at seed 0), with the chat and grid a policy
 * sees there.
 */
export const klInputs = (config: RunConfig, trainDir: string) =>
  Effect.provide(
    Effect.gen(function*() {
      const env = yield* Environment
      const inputs: PolicyInput[] = []
      for (let route = 0; route < config.kl_config.routes; route++) {
        let o = yield* env.reset(0, { routeIndex: route })
        for (;;) {
          inputs.push({ chat: o.chat, image: o.image, info: o.info })
          const [answer] = yield* oracle.act([inputs[inputs.length - 1]], { temperature: 1, greedy: true })
          const [t] = yield* env.step([answer.text])
          if (t === null || t.terminated || t.truncated) break
          o = t.observation
        }
      }
      return inputs
    }),
    environmentLayer(config, trainDir, { numEnvs: 1, seed: 0 })
  )

const BATCH = 64

/** A policy's output distributions on the inputs; a generator's along `along` (another policy's answers) when given. */
export const outputDistributions = (policy: PolicyService, inputs: ReadonlyArray<PolicyInput>, temperature: number, along?: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    if (policy.distributions === undefined) {
      return yield* new PolicyError({ message: `policy ${policy.name} cannot enumerate its outputs, so its KL cannot be measured` })
    }
    const out: OutputDistribution[] = []
    for (let i = 0; i < inputs.length; i += BATCH) {
      out.push(
        ...(yield* policy.distributions(inputs.slice(i, i + BATCH), { temperature, ...(along === undefined ? {} : { along: along.slice(i, i + BATCH) }) }))
      )
    }
    return out
  })

/**
 * KL(reference ‖ policy) averaged over the inputs, at the sampling temperature. For a generator
 * the policy replays the reference's greedy answers, token by token: the sum over the answer's
 * tokens of KL between the two next-token distributions.
 */
export const measureKl = (reference: ReadonlyArray<OutputDistribution>, policy: PolicyService, inputs: ReadonlyArray<PolicyInput>, temperature: number) =>
  Effect.flatMap(
    outputDistributions(policy, inputs, temperature, reference.every((r) => r.along !== undefined) ? reference.map((r) => r.along!) : undefined),
    (mine) =>
      Effect.try({
        try: (): KlSummary => meanKl(reference, mine),
        catch: (e) => new PolicyError({ message: `KL against ${policy.name}: ${(e as Error).message}` })
      })
  )
