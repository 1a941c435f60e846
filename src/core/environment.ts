import { Context, Data, type Effect } from "effect"
import type { Verdict } from "./reward.ts"

export type ContentPart = { readonly type: "text"; readonly text: string } | { readonly type: "image" }

/** One turn of the conversation a policy answers; `{type: "image"}` marks where the picture goes. */
export interface ChatTurn {
  readonly role: "user" | "assistant"
  readonly content: ReadonlyArray<ContentPart>
}

/** What a policy is shown at one step of one episode. */
export interface Observation<Info> {
  /** The conversation to answer: the question, and after a failed verification the answer and the feedback. */
  readonly chat: ReadonlyArray<ChatTurn>
  /** The packed RGB grid (height × width × 3), or null in language-only mode / after a forced end at stop(). */
  readonly image: { readonly width: number; readonly height: number; readonly rgb: Uint8Array } | null
  readonly info: Info
  /**
   * Where the episode stands, for logs and viewers; never shown to a policy. The V-IRL
   * environment gives `route_index`, `rail_index`, `instruction_index` (1-based, the sentence being
   * followed), `geocode` and `heading`, and at a reset
   * also the whole rail (`rail`: geocodes) and its `instructions`.
   */
  readonly trace?: Readonly<Record<string, unknown>>
}

export interface Transition<Info> {
  readonly observation: Observation<Info>
  readonly reward: number
  readonly terminated: boolean
  readonly truncated: boolean
  readonly verdict: Verdict
}

export interface ResetRequest {
  /** Which route; drawn by the run's generator when absent. */
  readonly routeIndex?: number
}

/**
 * Episodes with Gymnasium semantics — reset / step → observation, reward, terminated,
 * truncated, info — `numEnvs` of them at once, stepped in lock-step with one answer each.
 * A slot whose episode ended stays ended until `reset` is called for it.
 */
export interface VectorEnvironment<Info> {
  readonly numEnvs: number
  readonly reset: (slot: number, request?: ResetRequest) => Effect.Effect<Observation<Info>, EnvironmentError>
  readonly step: (outputs: ReadonlyArray<string | null>) => Effect.Effect<ReadonlyArray<Transition<Info> | null>, EnvironmentError>
  /**
   * Everything needed to continue exactly where the environments stand (generators, episodes in
   * progress), as plain JSON for a checkpoint.
   */
  readonly snapshot: () => EnvironmentSnapshot
  /** Puts the environments back as `snapshot` found them; the observation of each live slot (null if ended). */
  readonly restore: (snapshot: EnvironmentSnapshot) => Effect.Effect<ReadonlyArray<Observation<Info> | null>, EnvironmentError>
}

/** An environment's own description of its state; only the environment that wrote it reads it. */
export type EnvironmentSnapshot = { readonly kind: string } & Readonly<Record<string, unknown>>

export class EnvironmentError extends Data.TaggedError("EnvironmentError")<{
  readonly slot: number
  readonly message: string
}> {
  override toString(): string {
    return `environment (slot ${this.slot}): ${this.message}`
  }
}

/** The info of a step, keyed as the environment's reference logs them. */
export type StepInfoRecord = Readonly<Record<string, unknown>>

export class Environment extends Context.Tag("virl/Environment")<Environment, VectorEnvironment<StepInfoRecord>>() {}
