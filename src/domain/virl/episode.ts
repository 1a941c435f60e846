import type { ActionSpaceDefinition } from "../../core/action-space.ts"
import type { Rail, Waypoint } from "../../core/rail.ts"
import { Verdict } from "../../core/reward.ts"
import type { Geocode } from "./geo.ts"
import { verdictMessage, verify } from "./verifier.ts"

/** The info dict of a reset or step, with the reference's keys (its JSONL logs carry them). */
export type StepInfo = {
  readonly global_instruction: string
  readonly current_instruction: string
  readonly instruction_idx: number
  readonly gt_action: string
  readonly current_obs: string
  readonly obs_act_seq: string
  readonly "Verify Info": string | null
  readonly is_success: boolean
}

/** Where the camera stands for the visual observation. */
export interface ViewPose {
  readonly geocode: Geocode
  readonly heading: number
}

export interface EpisodeStep {
  readonly verdict: Verdict
  readonly terminated: boolean
  readonly truncated: boolean
  readonly info: StepInfo
  /** The pose to render, or null where the reference returns no observation. */
  readonly pose: ViewPose | null
}

export interface EpisodeConfig {
  readonly verify_iter: number
  readonly language_only: boolean
  /** Gymnasium's TimeLimit on top of the environment (the registration's 300). */
  readonly max_episode_steps: number
}

/**
 * One V-IRL episode on a rail, stepped as the reference's NavigationEnvironment (spec §6): each
 * answer uses one of `verify_iter` attempts at the current point; a correct answer moves on (or
 * ends the episode at stop()); running out forces the episode to end as a failure.
 */
export class Episode {
  private index = 0
  private remaining: number
  private readonly actions: string[] = []
  private readonly observations: string[] = []
  private geocode: Geocode
  private heading: number
  private success = true
  private elapsed = 0
  private finished = false

  constructor(
    readonly rail: Rail,
    private readonly actionSpace: ActionSpaceDefinition,
    private readonly config: EpisodeConfig
  ) {
    this.remaining = config.verify_iter
    this.geocode = rail.waypoints[0].geocode
    this.heading = rail.waypoints[0].heading
    this.observations.push(this.oracleObservation())
  }

  get waypoint(): Waypoint {
    return this.rail.waypoints[this.index]
  }

  get railIndex(): number {
    return this.index
  }

  /** Answers given so far, retries included. */
  get steps(): number {
    return this.elapsed
  }

  get done(): boolean {
    return this.finished
  }

  get groundTruth(): string {
    return this.actionSpace.groundTruth(this.waypoint)
  }

  /** The reset info (instruction_idx is 0 there, not the point's index). */
  resetInfo(): StepInfo {
    return { ...this.info(null), instruction_idx: 0 }
  }

  pose(): ViewPose {
    return { geocode: this.geocode, heading: this.heading }
  }

  /** Where the camera will stand after the next `count` correct answers (fewer near the end). */
  nextPoses(count: number): ViewPose[] {
    if (this.finished || this.config.language_only) return []
    return this.rail.waypoints.slice(this.index + 1, this.index + 1 + count).map((w) => ({ geocode: w.geocode, heading: w.heading }))
  }

  /**
   * One answer. After a truncation the episode can be stepped on, as the reference's can: a
   * forced end away from stop() advances the rail without resetting the attempt counter, so the
   * next answers are verified normally (the counter goes on below −1) until one is correct; and
   * Gymnasium's TimeLimit keeps reporting truncation. Only a terminated episode refuses a step.
   */
  step(output: string): EpisodeStep {
    if (this.finished) throw new Error("step() called on a terminated episode; reset first")
    this.elapsed += 1
    this.remaining -= 1
    const stepped = this.remaining === -1 ? this.exhaust() : this.answer(output)
    // Gymnasium's TimeLimit marks truncation whatever else happened at that step.
    const result = this.elapsed >= this.config.max_episode_steps ? { ...stepped, truncated: true } : stepped
    if (result.terminated) this.finished = true
    return result
  }

  private answer(output: string): EpisodeStep {
    const verdict = verify(output, this.groundTruth, this.waypoint.observation)
    let terminated = false
    if (verdict._tag === "Correct") {
      if (this.groundTruth === "stop()") terminated = true
      else this.moveOn()
    }
    this.heading = this.waypoint.heading
    return { verdict, terminated, truncated: false, info: this.info(verdictMessage(verdict)), pose: this.visualPose() }
  }

  /** Attempts used up: a failure; away from stop() the index still advances (spec §6). */
  private exhaust(): EpisodeStep {
    this.success = false
    const verdict = Verdict.Exhausted()
    if (this.groundTruth === "stop()") {
      return { verdict, terminated: true, truncated: true, info: this.info(verdictMessage(verdict)), pose: null }
    }
    // The reference advances the index but not the geocode here; the next view keeps the old position.
    this.index += 1
    this.heading = this.waypoint.heading
    return { verdict, terminated: false, truncated: true, info: this.info(verdictMessage(verdict)), pose: this.visualPose() }
  }

  /**
   * The reference's `move_on_rail` on its own, as its `_simulate_one_trajectory_in_rail` walks a
   * route: the next point, the camera with it, the attempts reset — no answer verified. What the
   * reference's recorder of grid cases did to bring the oracle to a rail index (test/conformance).
   */
  moveOnRail(): void {
    if (this.finished || this.groundTruth === "stop()") throw new Error(`move_on_rail past the rail's end (point ${this.index} asks for stop())`)
    this.moveOn()
  }

  private moveOn(): void {
    const action = this.groundTruth
    this.index += 1
    this.remaining = this.config.verify_iter
    this.geocode = this.waypoint.geocode
    this.actions.push(action)
    this.heading = this.waypoint.heading
    this.observations.push(this.oracleObservation())
  }

  private visualPose(): ViewPose | null {
    return this.config.language_only ? null : this.pose()
  }

  private oracleObservation(): string {
    const point = this.waypoint
    const intersection = point.absoluteAction === "stop()" ? "" : point.intersectionObservation
    return `${point.observation}; ${intersection}`
  }

  private info(verifyInfo: string | null): StepInfo {
    const point = this.waypoint
    return {
      global_instruction: this.rail.globalInstruction,
      current_instruction: point.instruction,
      instruction_idx: point.instructionIndex,
      gt_action: this.groundTruth,
      current_obs: this.oracleObservation(),
      obs_act_seq: observationActionSequence(this.actions, this.observations, this.config.language_only),
      "Verify Info": verifyInfo,
      is_success: this.success
    }
  }
}

/**
 * `O_i` / `A_i` lines for every past step, then the current observation and an empty action.
 * With images, only the current observation is replaced by the image placeholder; past ones keep
 * their landmark text (spec §5, a leak the paper's runs had).
 */
export const observationActionSequence = (
  actions: ReadonlyArray<string>,
  observations: ReadonlyArray<string>,
  languageOnly: boolean
): string => {
  let text = ""
  for (let i = 0; i < Math.min(actions.length, observations.length); i++) {
    text += `O_${i + 1}: ${observations[i]}\nA_${i + 1}: ${actions[i]}\n`
  }
  if (observations.length > actions.length) {
    const n = observations.length
    const last = observations[n - 1]
    const current = languageOnly
      ? last
      : `You observe an image of 4 views; ${last.includes("You observe an intersection") ? "You observe an intersection" : ""}`
    text += `O_${n}: ${current}\nA_${n}: \n`
  }
  return text
}
