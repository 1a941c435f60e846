import type { ChatTurn } from "../../core/environment.ts"
import type { StepInfo } from "./episode.ts"
import { type PromptTemplate, question } from "./prompt.ts"

export type { ChatTurn, ContentPart } from "../../core/environment.ts"

/**
 * The conversation a policy sees, as the reference's evaluator builds it (spec §8): after a
 * reset or a correct answer a fresh question (image first in vision-language mode); after any
 * other verdict the last answer stays and a "You failed this trial because ..." turn follows.
 */
export class Chat {
  private turns: ChatTurn[] = []

  constructor(
    private readonly template: PromptTemplate,
    private readonly actionSpaceText: string,
    private readonly withImage: boolean
  ) {}

  /** The payload to answer, given the info of the last reset or step. */
  prepare(info: StepInfo): ReadonlyArray<ChatTurn> {
    const feedback = info["Verify Info"]
    // The reference also tests for 'step_limit_reached"', which no message contains.
    if (feedback === null || feedback.includes("Correct action")) {
      const text = question(this.template, {
        instruction: info.global_instruction,
        actionSpace: this.actionSpaceText,
        obsActSeq: info.obs_act_seq
      })
      this.turns = [
        { role: "user", content: this.withImage ? [{ type: "image" }, { type: "text", text }] : [{ type: "text", text }] }
      ]
    } else {
      this.turns.push({ role: "user", content: [{ type: "text", text: `You failed this trial because ${feedback}` }] })
    }
    // a copy: an observation kept by its receiver (a rollout's inputs, a trace) must not grow with later turns
    return [...this.turns]
  }

  record(answer: string): void {
    this.turns.push({ role: "assistant", content: [{ type: "text", text: answer }] })
  }
}
