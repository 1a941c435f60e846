import { Effect, Layer } from "effect"
import { Policy, type PolicyService } from "../../core/policy.ts"
import type { Rng } from "../../core/random.ts"
import { claimsIntersection, OTHER_DESCRIPTIONS } from "./prompt-reader.ts"

/** The ground-truth answer of a V-IRL step, as a JSON object in the reference's output format. */
export const oracleText = (info: Readonly<Record<string, unknown>>, observation = String(info["current_obs"] ?? "")): string =>
  JSON.stringify({
    "current observation": observation,
    "current instruction": String(info["current_instruction"] ?? ""),
    action: String(info["gt_action"] ?? "")
  })

/** Answers every step with the environment's ground truth: the ceiling of every suite, and SFT's teacher. */
export const oracle: PolicyService = {
  name: "oracle",
  act: (inputs) => Effect.succeed(inputs.map((input) => ({ text: oracleText(input.info), logProb: 0, value: 0 })))
}

/** The oracle as a run's policy: it answers the ground truth and cannot be trained. */
export const layer = Layer.succeed(Policy, { name: "oracle", make: () => Effect.succeed(oracle) })

/**
 * The oracle's action and instruction, with the observation put in words of its own: the
 * environment's text or one of the other descriptions that make the same claim (intersection or
 * not), drawn uniformly. Every answer is correct for the verifier; a model trained on them spreads
 * its probability over the correct descriptions, as a pretrained model writes in its own words
 * rather than in one fixed format. It teaches the base model (`pretrain`).
 */
export const describingOracle = (rng: Rng): PolicyService => ({
  name: "describing-oracle",
  act: (inputs) =>
    Effect.sync(() =>
      inputs.map((input) => {
        const truth = String(input.info["current_obs"] ?? "")
        const others = claimsIntersection(truth) ? OTHER_DESCRIPTIONS.intersection : OTHER_DESCRIPTIONS.none
        const choices = [truth, ...others.filter((d) => d !== truth)]
        return { text: oracleText(input.info, choices[rng.choiceIndex(choices.length)]), logProb: 0, value: 0 }
      })
    )
})
