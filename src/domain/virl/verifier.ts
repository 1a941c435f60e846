import { Verdict } from "../../core/reward.ts"
import { NOT_FOUND, parseOutput, pyContains } from "./output-parsing.ts"

const FORMAT_REMINDER = `
[Output]
{{
  "current observation": latest observation from the streetview grid,
  "current instruction": analyze the full instruction and identify the sentence to be executed,
  "action": the action to be taken chosen from the action space,
}}`

/** The feedback text the reference returns with each verdict (its `Verify Info`). */
export const verdictMessage = Verdict.$match({
  Correct: () => "Correct action.",
  WrongAction: () => `you make incorrect action. Please avoid this action and try again in the same format:${FORMAT_REMINDER}.`,
  WrongObservation: ({ claimedIntersection }) =>
    claimedIntersection
      ? `you are not at any intersection. Please avoid this observation and try again in the same format:${FORMAT_REMINDER}.`
      : `you are at an intersection. Please avoid this observation and try again in the same format:${FORMAT_REMINDER}.`,
  WrongInstruction: () => `you make incorrect instruction. Please avoid this instruction and try again in the same format:${FORMAT_REMINDER}.`,
  Exhausted: () => "Exceed maximum verify steps"
})

/**
 * The reference's step verifier (`step_rewards_virl`). Where the reference raises — an
 * observation field that JSON gave as a number, boolean or null — the observation is taken to
 * mention no intersection, so the answer still gets a verdict (docs/reference-deviations.md).
 */
export const verify = (rawOutput: string, groundTruthAction: string, groundTruthObservation: string): Verdict => {
  const output = parseOutput(rawOutput)
  const parsed = output.action !== NOT_FOUND
  if (output.action === groundTruthAction) return Verdict.Correct()
  const claimsIntersection = pyContains(output.observation, "intersection") ?? false
  const truthHasIntersection = groundTruthObservation.includes("intersection")
  if (claimsIntersection && !truthHasIntersection) return Verdict.WrongObservation({ claimedIntersection: true, parsed })
  if (!claimsIntersection && truthHasIntersection) return Verdict.WrongObservation({ claimedIntersection: false, parsed })
  return Verdict.WrongAction({ parsed })
}
