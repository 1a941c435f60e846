import { lstripChars, rstripChars, strip, stripChars } from "./python-text.ts"

/**
 * `milestone_info` is a text of `{ ... }` blocks, one per intersection, with one `key: value`
 * per line. Parsed as the reference's `parse_navigation_string` does: split on `}`, strip the
 * leading `{`, quotes and trailing commas; a line without a colon is skipped.
 */
export type Milestone = Readonly<Record<string, string>>

export const parseMilestones = (text: string): Milestone[] => {
  const result: Milestone[] = []
  for (const rawBlock of text.split("}")) {
    const block = strip(lstripChars(strip(rawBlock), "{"))
    if (block === "") continue
    const entries: Array<[string, string]> = []
    for (const rawLine of block.split("\n")) {
      if (strip(rawLine) === "") continue
      const line = rstripChars(strip(rawLine), ",")
      const colon = line.indexOf(":")
      if (colon < 0) continue
      const key = stripChars(strip(line.slice(0, colon)), "\"'")
      const value = stripChars(strip(line.slice(colon + 1)), "\"'")
      const existing = entries.findIndex(([k]) => k === key)
      if (existing >= 0) entries[existing] = [key, value]
      else entries.push([key, value])
    }
    if (entries.length > 0) result.push(Object.fromEntries(entries))
  }
  return result
}
