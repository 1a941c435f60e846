/**
 * The reference's prompt templates (`Q_VIRL_L`, `Q_VIRL_VL`), character for character: they
 * are the benchmark's interface. "stree tviews" and the front/right/back/left caption are theirs.
 */
const LANGUAGE_ONLY = `
[Task Description]
You are an expert in navigation. You will receive a sequence of instructions to follow. You
are also provided with your observation and action history in text. Your goal is to first analyze the instruction and identify the next sentence to be executed. 
Then, you need to provide the action to be taken based on the current observation and instruction.

[Instruction]
{instruction}

[Action space]
{action_space}

[Observations and actions sequence]
{obs_act_seq}

[Output]
{
  "current observation": latest observation from the observation sequence,
  "current instruction": analyze the full instruction and identify the sentence to be executed,
  "action": the action to be taken chosen from the action space,
}
`

const VISION_LANGUAGE = `
[Task Description]
You are an expert in navigation. You will receive a sequence of instructions to follow while observing your surrounding stree tviews. You
are also provided with your observation and action history in text. Your goal is to first analyze the instruction and identify the next sentence to be executed. 
Then, you need to provide the action to be taken based on the current observation and instruction.

[Instruction]
{instruction}

[Observation format]
You observe a 2x2 grid of streetview images with the following headings:
[front, right
 back, left]
You need to identify if any of the landmarks in the instruction are visible in the street view grid.

[Action space]
{action_space}

[Observations and actions sequence]
{obs_act_seq}

[Output]
{
  "current observation": latest observation from the street view grid,
  "current instruction": analyze the full instruction and identify the sentence to be executed,
  "action": the action to be taken chosen from the action space,
}
`

export type PromptTemplate = "Q_VIRL_L" | "Q_VIRL_VL"

export const TEMPLATES: Record<PromptTemplate, string> = { Q_VIRL_L: LANGUAGE_ONLY, Q_VIRL_VL: VISION_LANGUAGE }

export const templateFor = (languageOnly: boolean): PromptTemplate => (languageOnly ? "Q_VIRL_L" : "Q_VIRL_VL")

export interface QuestionFields {
  readonly instruction: string
  readonly actionSpace: string
  readonly obsActSeq: string
}

/** Fills a template in one pass, so text inside the fields is never re-substituted. */
export const question = (template: PromptTemplate, fields: QuestionFields): string =>
  TEMPLATES[template].replace(
    /\{(instruction|action_space|obs_act_seq)\}/g,
    (_, name: string) => name === "instruction" ? fields.instruction : name === "action_space" ? fields.actionSpace : fields.obsActSeq
  )
