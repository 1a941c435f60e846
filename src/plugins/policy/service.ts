import { Effect, Either } from "effect"
import { CheckpointError } from "../../core/checkpoint.ts"
import {
  type ActOptions,
  type Learner,
  type OutputDistribution,
  PolicyError,
  type PolicyInput,
  type PolicyOutput,
  type PolicyService,
  type StoredPolicy
} from "../../core/policy.ts"

/** What the tfjs-based policies share in becoming a PolicyService, and in loading from a checkpoint. */

/** A policy's promise-returning act and distributions as a PolicyService's effects; a failure is a PolicyError naming the call. */
export const policyService = (parts: {
  readonly name: string
  readonly config: unknown
  readonly act: (inputs: ReadonlyArray<PolicyInput>, options: ActOptions) => Promise<ReadonlyArray<PolicyOutput>>
  readonly distributions: (
    inputs: ReadonlyArray<PolicyInput>,
    options: { readonly temperature: number; readonly along?: ReadonlyArray<string> }
  ) => Promise<ReadonlyArray<OutputDistribution>>
  readonly learner: Learner
  readonly release: () => void
}): PolicyService => ({
  name: parts.name,
  config: parts.config,
  act: (inputs, options) =>
    Effect.tryPromise({ try: () => parts.act(inputs, options), catch: (e) => new PolicyError({ message: `act: ${(e as Error).message}` }) }),
  distributions: (inputs, options) =>
    Effect.tryPromise({
      try: () => parts.distributions(inputs, options),
      catch: (e) => new PolicyError({ message: `distributions: ${(e as Error).message}` })
    }),
  learner: parts.learner,
  release: parts.release
})

/** A checkpoint's policy config as this run uses it (with the run's thought weight), or a CheckpointError naming the checkpoint. */
export const storedPolicyConfig = <C>(stored: StoredPolicy, decoded: Either.Either<C, string>, thoughtWeight: number) =>
  Either.match(decoded, {
    onLeft: (why) => Effect.fail(new CheckpointError({ path: stored.path, message: `the checkpoint cannot be loaded: ${why}` })),
    onRight: (c) => Effect.succeed({ ...c, thought_prob_coef: thoughtWeight })
  })

/** A policy built from its config and weights; a failure is a PolicyError naming the checkpoint they came from, if any. */
export const policyFrom = <A>(stored: StoredPolicy | undefined, build: () => A) =>
  Effect.try({
    try: build,
    catch: (e) => new PolicyError({ message: `${stored === undefined ? "" : `checkpoint ${stored.path}: `}${e instanceof Error ? e.message : String(e)}` })
  })
