import { loads, type PyJson } from "./python-json.ts"

/** The keys the reference reads from a model's answer. */
export type OutputKey = "action" | "current observation" | "current instruction"

/** What the reference returns when a key is found nowhere. */
export const NOT_FOUND = "None"

// Python's `.` stops only at "\n"; JavaScript's also at "\r", U+2028 and U+2029, hence [^\n].
const FALLBACK: Record<OutputKey, RegExp> = {
  action: /"action": "([^\n]*?)"/,
  "current observation": /"current observation": "([^\n]*?)"/,
  "current instruction": /"current instruction": "([^\n]*?)"/
}

/**
 * The reference's `re_match`: the whole text as JSON and the key from it; on any failure the
 * first `"<key>": "(.*?)"` in the text; else the string "None". JSON may yield non-strings.
 */
export const reMatch = (text: string, key: OutputKey): PyJson => {
  try {
    const parsed = loads(text)
    if (parsed instanceof Map && parsed.has(key)) return parsed.get(key) as PyJson
  } catch {
    // not JSON: fall through to the pattern, as the reference does
  }
  const match = FALLBACK[key].exec(text)
  return match === null ? NOT_FOUND : match[1]
}

/** A model's answer split into the three fields the verifier reads. */
export interface ParsedOutput {
  readonly action: PyJson
  readonly observation: PyJson
  readonly instruction: PyJson
}

export const parseOutput = (text: string): ParsedOutput => ({
  action: reMatch(text, "action"),
  observation: reMatch(text, "current observation"),
  instruction: reMatch(text, "current instruction")
})

/** Python's `needle in value`, where the reference would raise for a number, bool or null. */
export const pyContains = (value: PyJson, needle: string): boolean | undefined => {
  if (typeof value === "string") return value.includes(needle)
  if (Array.isArray(value)) return value.some((item) => item === needle)
  if (value instanceof Map) return value.has(needle)
  return undefined
}
