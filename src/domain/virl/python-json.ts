/**
 * `json.loads` as Python does it, so that model text parses to the same value the reference
 * sees: NaN / Infinity / -Infinity are accepted, control characters inside strings are not,
 * a duplicate key keeps its last value, and anything after the value is an error.
 * Objects come back as Maps (no prototype keys can leak in).
 */
export type PyJson = null | boolean | number | string | PyJson[] | Map<string, PyJson>

export class PyJsonError extends Error {}

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y
const WS = /[ \t\n\r]*/y
const ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }

export const loads = (text: string): PyJson => {
  let pos = 0
  const skip = () => {
    WS.lastIndex = pos
    WS.exec(text)
    pos = WS.lastIndex
  }
  const fail = (what: string): never => {
    throw new PyJsonError(`${what} at char ${pos}`)
  }
  const LITERALS: ReadonlyArray<readonly [string, PyJson]> = [
    ["null", null],
    ["true", true],
    ["false", false],
    ["NaN", NaN],
    ["Infinity", Infinity],
    ["-Infinity", -Infinity]
  ]
  const string = (): string => {
    pos++
    let out = ""
    for (;;) {
      if (pos >= text.length) fail("Unterminated string")
      const c = text[pos]
      if (c === '"') {
        pos++
        return out
      }
      if (c === "\\") {
        const e = text[pos + 1]
        if (e === "u") {
          const hex = text.slice(pos + 2, pos + 6)
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("Invalid \\uXXXX escape")
          const code = parseInt(hex, 16)
          pos += 6
          if (code >= 0xd800 && code <= 0xdbff && text.startsWith("\\u", pos)) {
            const low = text.slice(pos + 2, pos + 6)
            if (/^[0-9a-fA-F]{4}$/.test(low)) {
              const lowCode = parseInt(low, 16)
              if (lowCode >= 0xdc00 && lowCode <= 0xdfff) {
                out += String.fromCharCode(code, lowCode)
                pos += 6
                continue
              }
            }
          }
          out += String.fromCharCode(code)
          continue
        }
        if (e === undefined || !(e in ESCAPES)) fail("Invalid \\escape")
        out += ESCAPES[e]
        pos += 2
        continue
      }
      if (c.charCodeAt(0) < 0x20) fail("Invalid control character")
      out += c
      pos++
    }
  }
  const value = (): PyJson => {
    skip()
    const c = text[pos]
    if (c === '"') return string()
    if (c === "{") {
      pos++
      const map = new Map<string, PyJson>()
      skip()
      if (text[pos] === "}") {
        pos++
        return map
      }
      for (;;) {
        skip()
        if (text[pos] !== '"') fail("Expecting property name enclosed in double quotes")
        const key = string()
        skip()
        if (text[pos] !== ":") fail("Expecting ':' delimiter")
        pos++
        map.set(key, value())
        skip()
        if (text[pos] === "}") {
          pos++
          return map
        }
        if (text[pos] !== ",") fail("Expecting ',' delimiter")
        pos++
      }
    }
    if (c === "[") {
      pos++
      const items: PyJson[] = []
      skip()
      if (text[pos] === "]") {
        pos++
        return items
      }
      for (;;) {
        items.push(value())
        skip()
        if (text[pos] === "]") {
          pos++
          return items
        }
        if (text[pos] !== ",") fail("Expecting ',' delimiter")
        pos++
      }
    }
    for (const [word, literal] of LITERALS) {
      if (text.startsWith(word, pos)) {
        pos += word.length
        return literal
      }
    }
    NUMBER.lastIndex = pos
    const m = NUMBER.exec(text)
    if (m === null || m[0] === "") return fail("Expecting value")
    pos = NUMBER.lastIndex
    return Number(m[0])
  }
  const result = value()
  skip()
  if (pos !== text.length) fail("Extra data")
  return result
}
