import type { CheckpointError } from "./checkpoint.ts"
import { Context, Data, type Effect } from "effect"
import type { ChatTurn, StepInfoRecord } from "./environment.ts"
import type { OptimizerService } from "./optimizer.ts"
import type { Parameters } from "./parameters.ts"
import type { Rng } from "./random.ts"

/** What a policy answers: the conversation and the picture, as a VLM receives them. */
export interface PolicyInput {
  readonly chat: ReadonlyArray<ChatTurn>
  readonly image: { readonly width: number; readonly height: number; readonly rgb: Uint8Array } | null
  /** The environment's info. Privileged: only the `oracle` policy reads it. */
  readonly info: StepInfoRecord
}

/**
 * A policy's own record of one output, enough to re-evaluate it with gradients later (its
 * features and choices). Opaque to the algorithms.
 */
export interface Sample {
  readonly policy: string
}

export interface PolicyOutput {
  readonly text: string
  /** log-probability of the text; non-action parts weighted by `thought_prob_coef` (spec §10). */
  readonly logProb: number
  readonly value: number
  /** Present for trainable policies. */
  readonly sample?: Sample
}

export interface ActOptions {
  readonly temperature: number
  /** Take the most likely output instead of sampling (evaluation). */
  readonly greedy: boolean
}

/** Per-sample derivatives of the loss with respect to what the policy computes. */
export interface LossCoefficients {
  readonly logProb: ReadonlyArray<number>
  readonly value: ReadonlyArray<number>
  readonly entropy: ReadonlyArray<number>
}

export interface Evaluation {
  readonly logProbs: ReadonlyArray<number>
  readonly values: ReadonlyArray<number>
  readonly entropies: ReadonlyArray<number>
}

/** Named parameter arrays; an optimizer updates them in place. */

/**
 * The trainable side of a policy. Algorithms in core never see tensors: they ask for a
 * re-evaluation, return dLoss/dlogProb, dLoss/dvalue and dLoss/dentropy per sample (all
 * plain numbers, from the math of their loss), and get the gradient of that loss with respect
 * to every parameter.
 */
export interface Learner {
  readonly parameters: () => Parameters
  /** Push parameters changed in place by an optimizer back into the model. */
  readonly commit: () => void
  /** The sample for a given output text (teacher forcing), or undefined if this policy cannot write it. */
  readonly teacher: (input: PolicyInput, text: string) => Sample | undefined
  readonly gradients: (
    samples: ReadonlyArray<Sample>,
    options: { readonly thoughtWeight: number; readonly temperature: number },
    coefficients: (evaluation: Evaluation) => LossCoefficients
  ) => Effect.Effect<{ readonly gradients: Parameters; readonly evaluation: Evaluation }, PolicyError>
  /**
   * Optional: the optimizer's updates run where the parameters live (a GPU), for an optimizer
   * this learner implements there, named by its plugin (undefined: not this one, or not these
   * settings). From then on `gradients` leaves each gradient there, applies the update itself and
   * returns no gradient arrays; the returned service's `accumulate` reports that update, and
   * `commit` has nothing to push.
   */
  readonly onDevice?: (optimizerName: string, optimizer: OptimizerService) => OptimizerService | undefined
  /** Optional: brings `parameters()` (and a device optimizer's `state()`) up to date with the device. */
  readonly settle?: () => Effect.Effect<void, PolicyError>
}

/**
 * A policy's whole output distribution for one input, as independent parts (action, observation
 * description, instruction, ...): each part's log-probabilities over its options. Two inputs' parts
 * line up when the same policy reads the same input.
 */
export interface OutputDistribution {
  readonly parts: Readonly<Record<string, ReadonlyArray<number>>>
  /** The answer the parts were taken along (a generator's; see PolicyService.distributions). */
  readonly along?: string
}

export interface PolicyService {
  readonly name: string
  readonly act: (inputs: ReadonlyArray<PolicyInput>, options: ActOptions) => Effect.Effect<ReadonlyArray<PolicyOutput>, PolicyError>
  /**
   * The output distribution at a sampling temperature, part by part. A policy that enumerates
   * its outputs gives each part's options; a generator gives each token's distribution along an
   * answer — `along[i]` when given (another policy's, so that the two line up), else its own
   * greedy one, returned as `along`.
   */
  readonly distributions?: (
    inputs: ReadonlyArray<PolicyInput>,
    options: { readonly temperature: number; readonly along?: ReadonlyArray<string> }
  ) => Effect.Effect<ReadonlyArray<OutputDistribution>, PolicyError>
  readonly learner?: Learner
  /** The policy's own configuration, stored in checkpoints. */
  readonly config?: unknown
  /** Where it computes (e.g. "wasm"), for logs. */
  readonly device?: string
  /**
   * Optional: gives back what the policy holds outside JavaScript's heap (tensors, GPU buffers).
   * The policy is not used after; whoever built it releases it when its scope closes.
   */
  readonly release?: () => void
}

export class PolicyError extends Data.TaggedError("PolicyError")<{ readonly message: string }> {
  override toString(): string {
    return `policy: ${this.message}`
  }
}

/** What a run tells a policy plugin: its own settings and the run's generation settings. */
export interface PolicySettings {
  /** The run's `policy_config` (architecture; a plugin reads its own keys). */
  readonly policy_config: Readonly<Record<string, unknown>>
  readonly thought_prob_coef: number
  /** Compute backend asked for (`wasm`, `cpu`, `native`, `auto`, ...). */
  readonly backend: string
}

/** A checkpoint's policy part, to load. */
export interface StoredPolicy {
  readonly name: string
  readonly config: unknown
  readonly parameters: Parameters
  /** Where it was read from (for messages). */
  readonly path: string
}

/**
 * A policy plugin: builds fresh policies (drawing initial weights from `rng`) or loads stored
 * ones. Training, evaluation and the CLI obtain it with `yield* Policy`.
 */
export interface PolicyFactory {
  readonly name: string
  /** What else tells its fresh policies apart beyond `policy_config` (e.g. a size override), for caches. */
  readonly key?: string
  readonly make: (settings: PolicySettings, rng: Rng, stored?: StoredPolicy) => Effect.Effect<PolicyService, PolicyError | CheckpointError>
}

export class Policy extends Context.Tag("virl/Policy")<Policy, PolicyFactory>() {}

/** The text of the question in a chat (its first user turn). */
export const questionText = (chat: ReadonlyArray<ChatTurn>): string => {
  const first = chat.find((t) => t.role === "user")
  return first?.content.map((p) => (p.type === "text" ? p.text : "")).join("") ?? ""
}
