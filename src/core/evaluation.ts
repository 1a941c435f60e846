import { Effect } from "effect"
import type { Observation, StepInfoRecord, VectorEnvironment } from "./environment.ts"
import { EpisodeSlots } from "./episodes.ts"
import type { ActOptions, PolicyInput, PolicyService } from "./policy.ts"
import type { Verdict } from "./reward.ts"

/** The suite's numbers, computed as the reference's StatLogger does (spec §9). */
export interface SuiteMetrics {
  readonly per_step_accuracy: number
  readonly success_rate: number
  readonly mean_reward: number
  readonly std_reward: number
  /** Environment steps (answers) per episode, retries included. */
  readonly mean_steps: number
  /** Answers per episode that failed verification (retries and the exhausting one). */
  readonly mean_verification_steps: number
  readonly num_traj: number
  /** Share of steps per verdict class, keyed as the reference's REWARD_FN_VIRL. */
  readonly rates: Readonly<Record<string, number>>
  /**
   * Each episode in episode order (with `order`, episode i is route i): its answers, its correct
   * answers and whether it succeeded (1 or 0) — what intervals over routes are drawn from.
   */
  readonly episodes: ReadonlyArray<EpisodeOutcome>
  /**
   * Shares of answers (steps) that named no action the parser could find, and that named one
   * outside the action space: a generator's own failures (a policy that chooses among the
   * listed actions has none). Present when the suite was told how to classify answers.
   */
  readonly answers?: { readonly unparsable: number; readonly outside_action_space: number }
  /**
   * By the ground-truth action of the step (`forward()`, a turn, `stop()`): answers, correct
   * answers, and the failed episodes whose last answer asked for it — what a change in success is
   * made of (which answers a policy gets right, and where its routes now end).
   */
  readonly by_action?: ActionBreakdown
}

/** What a step's ground truth asks for. */
export type ActionClass = "forward" | "turn" | "stop"
export const ACTION_CLASSES: ReadonlyArray<ActionClass> = ["forward", "turn", "stop"]

/** One ground-truth action's answers, correct answers, and failed episodes whose last answer asked for it. */
export interface ActionCounts {
  readonly answers: number
  readonly correct: number
  readonly failed_here: number
}
export type ActionBreakdown = Readonly<Record<ActionClass, ActionCounts>>

/** Zeroed counts for every action class, to be filled. */
export const emptyActionCounts = (): Record<ActionClass, { -readonly [K in keyof ActionCounts]: ActionCounts[K] }> => ({
  forward: { answers: 0, correct: 0, failed_here: 0 },
  turn: { answers: 0, correct: 0, failed_here: 0 },
  stop: { answers: 0, correct: 0, failed_here: 0 }
})

export const actionClass = (groundTruth: unknown): ActionClass => {
  const text = String(groundTruth ?? "")
  return text.startsWith("stop") ? "stop" : text.startsWith("forward") ? "forward" : "turn"
}

/** What an answer names: no action the parser finds, an action the action space lacks, or one of its actions. */
export type AnswerKind = "unparsable" | "outside" | "listed"

/** [answers, correct answers, success (1 or 0)] of one episode. */
export type EpisodeOutcome = readonly [number, number, number]

/** The reference's name for the class of a verdict (REWARD_FN_VIRL; an exhausted retry scores −1). */
export const verdictClass = (verdict: Verdict): string => {
  switch (verdict._tag) {
    case "Correct":
      return "CORRECT_ACTION"
    case "WrongObservation":
      return "INCORRECT_OBS"
    case "WrongInstruction":
      return "INCORRECT_INSTRUCTION"
    default:
      return "INCORRECT_ACTION"
  }
}

export interface SuiteOptions<E = never> {
  readonly numTraj: number
  /** true: route i for episode i (the `order` option); false: routes drawn by the run's generator. */
  readonly order: boolean
  readonly act: ActOptions
  /** One JSON value per line in the reference's evaluation log format. */
  readonly log?: (line: unknown) => void
  readonly onEpisode?: (done: number, total: number) => void
  /** Each finished episode, step by step with what the policy was shown (for viewers). */
  readonly record?: (episode: EpisodeRecord) => Effect.Effect<void, E>
  /** Classifies each answer for `SuiteMetrics.answers`. */
  readonly answerKind?: (text: string) => AnswerKind
}

/** One answer of an evaluated episode: what was shown, what was written, what the environment said. */
export interface StepRecord {
  /** The info and trace the question was built from, and the picture shown. */
  readonly shown: { readonly info: StepInfoRecord; readonly trace: Readonly<Record<string, unknown>> | undefined; readonly image: PolicyInput["image"] }
  readonly output: string
  readonly verdict: Verdict
  readonly verdictClass: string
  readonly reward: number
  /** The info after the answer (its "Verify Info" is the environment's feedback). */
  readonly after: StepInfoRecord
}

export interface EpisodeRecord {
  readonly episode: number
  readonly start: Readonly<Record<string, unknown>> | undefined
  readonly steps: ReadonlyArray<StepRecord>
  readonly success: boolean
  readonly reward: number
  readonly terminated: boolean
}

/**
 * Runs `numTraj` episodes, as many at once as the environment has slots, and reports the
 * reference's metrics. The log keeps the reference's line order per episode, episodes in order.
 */
export const runSuite = <E = never>(env: VectorEnvironment<StepInfoRecord>, policy: PolicyService, options: SuiteOptions<E>) =>
  Effect.gen(function*() {
    const counts: Record<string, number> = {}
    let steps = 0
    let successes = 0
    let failedChecks = 0
    const kinds: Record<AnswerKind, number> = { unparsable: 0, outside: 0, listed: 0 }
    const episodeRewards: number[] = []
    const logs: unknown[][] = Array.from({ length: options.numTraj }, () => [])
    let done = 0
    type Shown = StepRecord["shown"]
    const shownOf = (o: Observation<StepInfoRecord>): Shown => ({ info: o.info, trace: o.trace, image: o.image })
    // per episode: its reward so far, verification attempts, and (for viewers) its steps
    const state = new Map<number, { reward: number; veri: number; correct: number; shown: Shown; start: Shown["trace"]; steps: StepRecord[]; asked: unknown }>()
    const byAction = emptyActionCounts()
    const outcomes: EpisodeOutcome[] = Array.from({ length: options.numTraj }, () => [0, 0, 0] as const)
    const slots = new EpisodeSlots(env, {
      episodes: options.numTraj,
      route: (episode) => (options.order ? { routeIndex: episode } : undefined),
      onBegin: (episode, o) => state.set(episode, { reward: 0, veri: 0, correct: 0, shown: shownOf(o), start: o.trace, steps: [], asked: o.info["gt_action"] })
    })
    yield* slots.fill()
    while (slots.busy) {
      yield* slots.step(
        (inputs) => policy.act(inputs, options.act),
        (o) => o.text,
        ({ episode, output, transition: tr }) =>
          Effect.gen(function*() {
            const st = state.get(episode)!
            steps++
            if (options.answerKind !== undefined) kinds[options.answerKind(output.text)]++
            const cls = verdictClass(tr.verdict)
            counts[cls] = (counts[cls] ?? 0) + 1
            const asked = byAction[actionClass(st.asked)]
            asked.answers++
            if (tr.verdict._tag !== "Correct") failedChecks++
            else {
              st.correct++
              asked.correct++
            }
            st.asked = tr.observation.info["gt_action"]
            st.reward += tr.reward
            const log = logs[episode]!
            log.push({ sample_id: episode, veri_step: st.veri, output: output.text, reward: tr.reward, info: tr.observation.info })
            st.veri++
            if (options.record !== undefined) {
              st.steps.push({ shown: st.shown, output: output.text, verdict: tr.verdict, verdictClass: cls, reward: tr.reward, after: tr.observation.info })
              st.shown = shownOf(tr.observation)
            }
            if (tr.terminated || tr.truncated) {
              const success = tr.observation.info["is_success"] === true
              if (options.record !== undefined) {
                yield* options.record({ episode, start: st.start, steps: st.steps, success, reward: st.reward, terminated: tr.terminated })
              }
              if (success) successes++
              else asked.failed_here++
              outcomes[episode] = [st.veri, st.correct, success ? 1 : 0]
              episodeRewards.push(st.reward)
              log.push({ Success: success })
              log.push({ sample_id: episode, output: output.text, reward: st.reward, info: tr.observation.info })
              log.push({ Split: "====================" })
              state.delete(episode)
              options.onEpisode?.(++done, options.numTraj)
            }
          })
      )
    }
    const n = episodeRewards.length
    const mean = episodeRewards.reduce((s, r) => s + r, 0) / Math.max(1, n)
    const std = Math.sqrt(episodeRewards.reduce((s, r) => s + (r - mean) ** 2, 0) / Math.max(1, n))
    const rates: Record<string, number> = {}
    for (const [k, v] of Object.entries(counts)) rates[k] = Math.round((v / Math.max(1, steps)) * 1e4) / 1e4
    rates["CORRECT_SOLUTION"] = Math.round((successes / Math.max(1, n)) * 1e4) / 1e4
    const metrics: SuiteMetrics = {
      per_step_accuracy: (counts["CORRECT_ACTION"] ?? 0) / Math.max(1, steps),
      success_rate: successes / Math.max(1, n),
      mean_reward: mean,
      std_reward: std,
      mean_steps: steps / Math.max(1, n),
      mean_verification_steps: failedChecks / Math.max(1, n),
      num_traj: n,
      rates,
      episodes: outcomes,
      by_action: byAction,
      ...(options.answerKind === undefined
        ? {}
        : { answers: { unparsable: kinds.unparsable / Math.max(1, steps), outside_action_space: kinds.outside / Math.max(1, steps) } })
    }
    if (options.log !== undefined) {
      for (const lines of logs) for (const line of lines) options.log(line)
      options.log({ "Step Number": steps, "Trajectory Number": n, Rates: rates })
    }
    return metrics
  })
