/** Python's string semantics where the reference's behaviour depends on them. */

/** The characters Python's `str.isspace()` accepts (what `strip()` removes). */
const PY_WHITESPACE = "\\t\\n\\v\\f\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
const LEADING = new RegExp(`^[${PY_WHITESPACE}]+`)
const TRAILING = new RegExp(`[${PY_WHITESPACE}]+$`)

export const strip = (s: string): string => s.replace(LEADING, "").replace(TRAILING, "")

export const lstripChars = (s: string, chars: string): string => {
  let start = 0
  while (start < s.length && chars.includes(s[start])) start++
  return s.slice(start)
}

export const rstripChars = (s: string, chars: string): string => {
  let end = s.length
  while (end > 0 && chars.includes(s[end - 1])) end--
  return s.slice(0, end)
}

export const stripChars = (s: string, chars: string): string => rstripChars(lstripChars(s, chars), chars)
