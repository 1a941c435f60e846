import { Effect, Layer } from "effect"
import { Policy, type PolicyService, questionText } from "../../core/policy.ts"
import type { Rng } from "../../core/random.ts"
import { instructionSentences, listedActions } from "./prompt-reader.ts"

/** Valid JSON with an action drawn uniformly from those the prompt lists: the floor of every suite. */
export const make = (rng: Rng): PolicyService => ({
  name: "random",
  act: (inputs) =>
    Effect.sync(() =>
      inputs.map((input) => {
        const question = questionText(input.chat)
        const actions = listedActions(question)
        const sentences = instructionSentences(question)
        const action = actions.length === 0 ? "" : actions[rng.choiceIndex(actions.length)]
        const text = JSON.stringify({
          "current observation": rng.random() < 0.5 ? "You observe an intersection" : "No landmarks nearby",
          "current instruction": sentences.length === 0 ? "" : sentences[rng.choiceIndex(sentences.length)],
          action
        })
        return { text, logProb: -Math.log(Math.max(1, actions.length)), value: 0 }
      })
    )
})

/** Uniformly random answers among the listed actions, drawn from the run's generator. */
export const layer = Layer.succeed(Policy, { name: "random", make: (_settings, rng) => Effect.succeed(make(rng)) })
