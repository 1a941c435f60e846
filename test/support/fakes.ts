import { Effect, Layer } from "effect"
import { Environment, type Observation, type StepInfoRecord, type Transition, type VectorEnvironment } from "../../src/core/environment.ts"
import type { Parameters } from "../../src/core/parameters.ts"
import { type Evaluation, type Learner, Policy, type PolicyInput, type PolicyOutput, type PolicyService, type Sample } from "../../src/core/policy.ts"
import type { Rng } from "../../src/core/random.ts"
import { Verdict } from "../../src/core/reward.ts"

/**
 * Test layers: a corridor environment and a table policy that learns, so the algorithms in core
 * (rollouts, evaluation, PPO) run end to end in milliseconds, through the same contracts.
 */

export const ACTIONS = ["forward()", "stop()", "turn_direction(left)"] as const

/**
 * `numEnvs` corridors of `length` points: the right answer is forward() until the last point,
 * where it is stop() (success). A wrong answer stays put (reward −1); the third wrong answer in an
 * episode truncates it.
 */
export const corridor = (numEnvs: number, length = 3): VectorEnvironment<StepInfoRecord> => {
  const slots = Array.from({ length: numEnvs }, () => ({ pos: 0, wrong: 0, live: false }))
  const observe = (slot: number): Observation<StepInfoRecord> => {
    const s = slots[slot]!
    const last = s.pos === length - 1
    const text = last ? "you are at the destination" : `you are at point ${s.pos}`
    return { chat: [{ role: "user", content: [{ type: "text", text }] }], image: null, info: { gt_action: last ? "stop()" : "forward()", is_success: false } }
  }
  return {
    numEnvs,
    reset: (slot) =>
      Effect.sync(() => {
        slots[slot] = { pos: 0, wrong: 0, live: true }
        return observe(slot)
      }),
    step: (outputs) =>
      Effect.sync(() =>
        outputs.map((output, slot): Transition<StepInfoRecord> | null => {
          const s = slots[slot]!
          if (output === null || !s.live) return null
          const truth = s.pos === length - 1 ? "stop()" : "forward()"
          const correct = output === truth
          if (correct && truth === "stop()") {
            s.live = false
            const o = observe(slot)
            return { observation: { ...o, info: { ...o.info, is_success: true } }, reward: 1, terminated: true, truncated: false, verdict: Verdict.Correct() }
          }
          if (correct) s.pos += 1
          else s.wrong += 1
          const truncated = s.wrong >= 3
          if (truncated) s.live = false
          return {
            observation: observe(slot),
            reward: correct ? 1 : -1,
            terminated: false,
            truncated,
            verdict: correct ? Verdict.Correct() : Verdict.WrongAction({ parsed: true })
          }
        })
      ),
    snapshot: () => ({ kind: "corridor", slots: slots.map((s) => ({ ...s })) }),
    restore: (snapshot) =>
      Effect.sync(() => {
        ;(snapshot["slots"] as typeof slots).forEach((s, i) => (slots[i] = { ...s }))
        return slots.map((s, i) => (s.live ? observe(i) : null))
      })
  }
}

export const corridorLayer = (numEnvs: number, length = 3) => Layer.sync(Environment, () => corridor(numEnvs, length))

interface TableSample extends Sample {
  readonly context: number
  readonly action: number
}

const contextOf = (input: PolicyInput): number => {
  const text = input.chat[0]?.content.map((p) => (p.type === "text" ? p.text : "")).join("") ?? ""
  return text.includes("destination") ? 1 : 0
}

const logSoftmax = (z: ArrayLike<number>): number[] => {
  const max = Math.max(...Array.from(z))
  const lse = max + Math.log(Array.from(z).reduce((s, x) => s + Math.exp(x - max), 0))
  return Array.from(z, (x) => x - lse)
}

/**
 * A policy that is a table: logits over ACTIONS for each of two contexts (at the destination or
 * not) and a value per context; its learner's gradients are the exact ones of that table.
 */
export const tablePolicy = (rng: Rng): PolicyService => {
  const n = ACTIONS.length
  const parameters: Parameters = new Map([
    ["logits", new Float32Array(2 * n)],
    ["value", new Float32Array(2)]
  ])
  const logProbsAt = (context: number, temperature: number) =>
    logSoftmax(Array.from(parameters.get("logits")!.subarray(context * n, context * n + n), (x) => x / Math.max(temperature, 1e-6)))
  const act = (inputs: ReadonlyArray<PolicyInput>, options: { temperature: number; greedy: boolean }): PolicyOutput[] =>
    inputs.map((input) => {
      const context = contextOf(input)
      const lp = logProbsAt(context, options.temperature)
      let action = lp.indexOf(Math.max(...lp))
      if (!options.greedy) {
        let u = rng.random()
        action = lp.findIndex((l) => (u -= Math.exp(l)) < 0)
        if (action < 0) action = n - 1
      }
      const sample: TableSample = { policy: "table", context, action }
      return { text: ACTIONS[action]!, logProb: lp[action]!, value: parameters.get("value")![context]!, sample }
    })
  const learner: Learner = {
    parameters: () => parameters,
    commit: () => {},
    teacher: (input, text) => {
      const action = ACTIONS.indexOf(text as (typeof ACTIONS)[number])
      return action < 0 ? undefined : ({ policy: "table", context: contextOf(input), action } as TableSample)
    },
    gradients: (samples, options, coefficients) =>
      Effect.sync(() => {
        const rows = samples as ReadonlyArray<TableSample>
        const evaluation: Evaluation = {
          logProbs: rows.map((s) => logProbsAt(s.context, options.temperature)[s.action]!),
          values: rows.map((s) => parameters.get("value")![s.context]!),
          entropies: rows.map((s) => -logProbsAt(s.context, options.temperature).reduce((h, l) => h + Math.exp(l) * l, 0))
        }
        const c = coefficients(evaluation)
        const dLogits = new Float32Array(2 * n)
        const dValue = new Float32Array(2)
        rows.forEach((s, i) => {
          const lp = logProbsAt(s.context, options.temperature)
          const h = evaluation.entropies[i]!
          for (let k = 0; k < n; k++) {
            const p = Math.exp(lp[k]!)
            dLogits[s.context * n + k] += (c.logProb[i]! * ((k === s.action ? 1 : 0) - p) + c.entropy[i]! * -p * (lp[k]! + h)) / options.temperature
          }
          dValue[s.context] += c.value[i]!
        })
        return { gradients: new Map([["logits", dLogits], ["value", dValue]]), evaluation }
      })
  }
  return { name: "table", act: (inputs, options) => Effect.sync(() => act(inputs, options)), learner }
}

export const tablePolicyLayer = Layer.succeed(Policy, { name: "table", make: (_settings, rng) => Effect.succeed(tablePolicy(rng)) })

/** A policy that answers from a script, whatever it is shown (evaluation only). */
export const scriptedPolicy = (answer: (input: PolicyInput) => string): PolicyService => ({
  name: "scripted",
  act: (inputs) => Effect.succeed(inputs.map((input) => ({ text: answer(input), logProb: 0, value: 0 })))
})
