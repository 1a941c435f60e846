/**
 * A 5×7 bitmap font, so that signs read the same on every machine whatever fonts it has.
 * Each glyph is seven rows of five bits, most significant bit on the left.
 */
const GLYPHS: Readonly<Record<string, ReadonlyArray<number>>> = {
  A: [14, 17, 17, 31, 17, 17, 17],
  B: [30, 17, 17, 30, 17, 17, 30],
  C: [14, 17, 16, 16, 16, 17, 14],
  D: [28, 18, 17, 17, 17, 18, 28],
  E: [31, 16, 16, 30, 16, 16, 31],
  F: [31, 16, 16, 30, 16, 16, 16],
  G: [14, 17, 16, 23, 17, 17, 15],
  H: [17, 17, 17, 31, 17, 17, 17],
  I: [14, 4, 4, 4, 4, 4, 14],
  J: [7, 2, 2, 2, 2, 18, 12],
  K: [17, 18, 20, 24, 20, 18, 17],
  L: [16, 16, 16, 16, 16, 16, 31],
  M: [17, 27, 21, 21, 17, 17, 17],
  N: [17, 17, 25, 21, 19, 17, 17],
  O: [14, 17, 17, 17, 17, 17, 14],
  P: [30, 17, 17, 30, 16, 16, 16],
  Q: [14, 17, 17, 17, 21, 18, 13],
  R: [30, 17, 17, 30, 20, 18, 17],
  S: [15, 16, 16, 14, 1, 1, 30],
  T: [31, 4, 4, 4, 4, 4, 4],
  U: [17, 17, 17, 17, 17, 17, 14],
  V: [17, 17, 17, 17, 17, 10, 4],
  W: [17, 17, 17, 21, 21, 21, 10],
  X: [17, 17, 10, 4, 10, 17, 17],
  Y: [17, 17, 17, 10, 4, 4, 4],
  Z: [31, 1, 2, 4, 8, 16, 31],
  "0": [14, 17, 19, 21, 25, 17, 14],
  "1": [4, 12, 4, 4, 4, 4, 14],
  "2": [14, 17, 1, 2, 4, 8, 31],
  "3": [31, 2, 4, 2, 1, 17, 14],
  "4": [2, 6, 10, 18, 31, 2, 2],
  "5": [31, 16, 30, 1, 1, 17, 14],
  "6": [6, 8, 16, 30, 17, 17, 14],
  "7": [31, 1, 2, 4, 8, 8, 8],
  "8": [14, 17, 17, 14, 17, 17, 14],
  "9": [14, 17, 17, 15, 1, 2, 12],
  "'": [4, 4, 8, 0, 0, 0, 0],
  "&": [12, 18, 20, 8, 21, 18, 13],
  "-": [0, 0, 0, 31, 0, 0, 0],
  ".": [0, 0, 0, 0, 0, 12, 12],
  "!": [4, 4, 4, 4, 4, 0, 4],
  ":": [0, 12, 12, 0, 12, 12, 0],
  "/": [1, 1, 2, 4, 8, 16, 16],
  "(": [2, 4, 8, 8, 8, 4, 2],
  ")": [8, 4, 2, 2, 2, 4, 8],
  "%": [24, 25, 2, 4, 8, 19, 3],
  _: [0, 0, 0, 0, 0, 0, 31],
  ",": [0, 0, 0, 0, 12, 4, 8],
  "+": [0, 4, 4, 31, 4, 4, 0],
  "=": [0, 0, 31, 0, 31, 0, 0],
  " ": [0, 0, 0, 0, 0, 0, 0]
}

export const GLYPH_HEIGHT = 7
/** Glyph width plus one column of spacing. */
export const GLYPH_ADVANCE = 6

/** A line of text as a bitmap: `bits[y * width + x]` is 1 where ink is. */
export interface TextBitmap {
  readonly width: number
  readonly height: number
  readonly bits: Uint8Array
}

export const hasGlyph = (char: string): boolean => GLYPHS[char.toUpperCase()] !== undefined

export const textBitmap = (text: string): TextBitmap => {
  const chars = [...text.toUpperCase()]
  const unknown = chars.filter((c) => GLYPHS[c] === undefined)
  if (unknown.length > 0) throw new RangeError(`no glyph for ${JSON.stringify(unknown.join(""))} in ${JSON.stringify(text)}`)
  const width = Math.max(1, chars.length * GLYPH_ADVANCE - 1)
  const bits = new Uint8Array(width * GLYPH_HEIGHT)
  chars.forEach((c, i) => {
    const rows = GLYPHS[c] as ReadonlyArray<number>
    for (let y = 0; y < GLYPH_HEIGHT; y++) {
      for (let x = 0; x < 5; x++) if ((rows[y] >> (4 - x)) & 1) bits[y * width + i * GLYPH_ADVANCE + x] = 1
    }
  })
  return { width, height: GLYPH_HEIGHT, bits }
}
