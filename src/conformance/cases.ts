import * as fs from "node:fs"
import * as path from "node:path"

/** One recorded behaviour of the reference and how ours compared. */
export interface CaseResult {
  readonly file: string
  readonly index: number
  readonly label: string
  readonly ok: boolean
  readonly detail?: string
}

export interface CaseFile {
  readonly about: string
  readonly cases: ReadonlyArray<Record<string, unknown>>
}

export const readCaseFile = (dir: string, name: string): CaseFile | undefined => {
  const file = path.join(dir, "cases", name)
  if (!fs.existsSync(file)) return undefined
  const json = JSON.parse(fs.readFileSync(file, "utf8")) as CaseFile
  if (!Array.isArray(json.cases)) throw new Error(`${file}: expected {"about", "cases": [...]}`)
  return json
}

/** Deep comparison with a tolerance for floats; returns the first difference as a path. */
export const firstDifference = (actual: unknown, expected: unknown, tolerance = 0, at = "$"): string | undefined => {
  if (typeof expected === "number" && typeof actual === "number") {
    if (Number.isNaN(expected) && Number.isNaN(actual)) return undefined
    return Math.abs(actual - expected) <= tolerance || actual === expected
      ? undefined
      : `${at}: expected ${expected}, got ${actual}`
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${at}: expected an array, got ${JSON.stringify(actual)}`
    if (actual.length !== expected.length) return `${at}: expected length ${expected.length}, got ${actual.length}`
    for (let i = 0; i < expected.length; i++) {
      const d = firstDifference(actual[i], expected[i], tolerance, `${at}[${i}]`)
      if (d !== undefined) return d
    }
    return undefined
  }
  if (expected !== null && typeof expected === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual)) {
      return `${at}: expected an object, got ${JSON.stringify(actual)}`
    }
    const a = actual as Record<string, unknown>
    const e = expected as Record<string, unknown>
    const keys = new Set([...Object.keys(a), ...Object.keys(e)])
    for (const key of keys) {
      if (!(key in e)) return `${at}.${key}: not expected, got ${JSON.stringify(a[key])}`
      if (!(key in a)) return `${at}.${key}: missing (expected ${JSON.stringify(e[key])})`
      const d = firstDifference(a[key], e[key], tolerance, `${at}.${key}`)
      if (d !== undefined) return d
    }
    return undefined
  }
  return actual === expected ? undefined : `${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`
}
