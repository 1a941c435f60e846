/**
 * Reads the parts of a V-IRL question a policy needs, from the text alone: the numbered
 * instruction sentences, the actions the action-space section lists, and the observation /
 * action history.
 */
const section = (text: string, header: string): string => {
  const start = text.indexOf(`[${header}]`)
  if (start < 0) return ""
  const rest = text.slice(start + header.length + 2)
  const end = rest.search(/\n\[[A-Z][a-z]+( [a-z]+)*\]/)
  return end < 0 ? rest : rest.slice(0, end)
}

/** `1. First, turn left to face north.` → `First, turn left to face north.` */
export const instructionSentences = (question: string): string[] =>
  section(question, "Instruction")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /^\d+\.\s/.test(l))
    .map((l) => l.replace(/^\d+\.\s/, ""))

/**
 * The actions listed: every `"name(...)"` entry, with an `x` argument expanded over the list of
 * values the same line gives in brackets.
 */
export const listedActions = (question: string): string[] => {
  const actions: string[] = []
  for (const line of section(question, "Action space").split("\n")) {
    const m = /^\s*"([a-z_]+)\(([a-z]*)\)"/.exec(line)
    if (m === null) continue
    const [, name, arg] = m
    if (arg === "") actions.push(`${name}()`)
    else {
      const values = /\[([^\]]*)\]/.exec(line)?.[1].match(/'([^']*)'/g)?.map((v) => v.slice(1, -1)) ?? []
      for (const v of values) actions.push(`${name}(${v})`)
    }
  }
  return actions
}

export interface History {
  /** Past `A_k` answers in order. */
  readonly actions: string[]
  /** Past `O_k` observations in order (the current one last). */
  readonly observations: string[]
}

export const history = (question: string): History => {
  const actions: string[] = []
  const observations: string[] = []
  for (const line of section(question, "Observations and actions sequence").split("\n")) {
    const m = /^([OA])_\d+: ?(.*)$/.exec(line.trim())
    if (m === null) continue
    if (m[1] === "O") observations.push(m[2])
    else if (m[2] !== "") actions.push(m[2])
  }
  return { actions, observations }
}
