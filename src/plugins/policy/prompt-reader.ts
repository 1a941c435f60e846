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
      // a Python list's repr: 'single' quotes, or "double" where the value holds an apostrophe
      const values = /\[([^\]]*)\]/.exec(line)?.[1].match(/'[^']*'|"[^"]*"/g)?.map((v) => v.slice(1, -1)) ?? []
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

/** The landmark of each sentence that names one (`... where <landmark>.`), in order, without repeats. */
export const landmarkClauses = (sentences: ReadonlyArray<string>): string[] => [
  ...new Set(sentences.flatMap((s) => /\bwhere (.+?)\.\s*$/.exec(s)?.[1] ?? []))
]

/**
 * Ways to describe the current observation that a trainable policy chooses from. The reference's
 * verifier reads a description as claiming an intersection exactly when it contains the word
 * "intersection", so every description here either claims one in those words or avoids the word.
 * The first ones are the environment's own texts (what the oracle writes): "No landmarks
 * nearby; " between intersections, "<landmark>; You observe an intersection" at one, "<landmark>; "
 * at the destination. The rest are other correct phrasings.
 */
export const AT_INTERSECTION = "You observe an intersection"
export const OTHER_DESCRIPTIONS: { readonly intersection: ReadonlyArray<string>; readonly none: ReadonlyArray<string> } = {
  intersection: [AT_INTERSECTION, "An intersection is in view", "I am standing at an intersection"],
  none: ["The street continues ahead", "Walking along the block", "Nothing notable in view"]
}

export const observationCandidates = (sentences: ReadonlyArray<string>): string[] => {
  const landmarks = landmarkClauses(sentences)
  return [
    ...new Set([
      "No landmarks nearby; ",
      `No landmark nearby; ${AT_INTERSECTION}`,
      ...landmarks.flatMap((l) => [`${l}; ${AT_INTERSECTION}`, `${l}; `]),
      ...OTHER_DESCRIPTIONS.intersection,
      ...OTHER_DESCRIPTIONS.none
    ])
  ]
}

/** Whether the reference's verifier reads a description as claiming an intersection. */
export const claimsIntersection = (description: string): boolean => description.includes("intersection")
