/**
 * The generative policy's tokenizer: fixed, not fitted. Text is cut into pieces — a run of
 * letters, digits and underscores with the spaces before it, or one other character — and a
 * piece in the vocabulary is one token; any other piece is spelled out one character per token.
 * So every ASCII text round-trips exactly (decode(encode(t)) === t) and a name the vocabulary
 * lacks (a landmark of another city) costs a few more tokens, never an unknown word. The
 * vocabulary is the words of the task's own text (prompt templates, action spaces, instruction
 * and observation phrasings, feedback) with and without a leading space; it is stored with
 * each checkpoint, so a later virl with another list still reads an old policy.
 */
import { absolute } from "../../action-space/absolute.ts"
import { clock } from "../../action-space/clock.ts"
import { relative } from "../../action-space/relative.ts"
import { TEMPLATES } from "../../../domain/virl/prompt.ts"

/** Token ids 0..3: padding, start of the answer, end of the answer, a character outside ASCII. */
export const PAD = 0
export const BOS = 1
export const EOS = 2
export const UNKNOWN = 3
const SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]

/** Printable ASCII, newline and tab: the spelled-out fallback. */
const CHARACTERS = ["\n", "\t", ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i))]

/** Phrases of the task beyond the templates: instruction wordings, observations, feedback, the answer's keys. */
const PHRASES = `
First, turn slightly left right to face north northeast east southeast south southwest west northwest.
Turn Move forward until you reach next intersection where destination is on your left right front behind.
Make a make turn Go go so that you face Head head by turning To start Now now toward the Walk walk straight on
Keep keep going arrive at Go ahead as far as
No landmarks nearby You observe an image of 4 views intersection
"current observation": "current instruction": "action": forward() stop() turn_direction
Correct action. Exceed maximum verify steps Please avoid this observation and try again in the same format
you are not at any intersection you make incorrect instruction wrong
O_1 A_1 O_2 A_2 O_3 A_3 O_4 A_4 O_5 A_5 O_6 A_6 O_7 A_7 O_8 A_8 O_9 A_9 O_10 A_10 O_11 A_11 O_12 A_12
one two three four five six seven eight nine ten o'clock clock
`

const PIECE = /\s*[A-Za-z0-9_]+|\s*[^\sA-Za-z0-9_]|\s+$/g

/** The text cut into pieces (their concatenation is the text; trailing spaces form one piece). */
export const pieces = (text: string): string[] => {
  const out = text.match(PIECE) ?? []
  // spaces before a punctuation mark or at the very end are kept by the two alternatives; any
  // other run of spaces sits before a word (first alternative): the pieces cover the whole text
  return out
}

const wordsOf = (text: string): string[] => text.match(/[A-Za-z0-9_]+/g) ?? []

/** The default vocabulary: specials, the characters, then each task word bare, after a space and after a newline. */
export const defaultVocabulary = (): string[] => {
  const corpus = [...Object.values(TEMPLATES), PHRASES, ...[absolute, relative, clock].flatMap((s) => [s.promptText, ...s.actions])].join("\n")
  const words = [...new Set(wordsOf(corpus))].sort()
  const vocabulary = [...SPECIALS, ...CHARACTERS]
  const seen = new Set(vocabulary)
  for (const w of words) {
    for (const piece of [w, ` ${w}`, `\n${w}`]) {
      if (!seen.has(piece)) {
        seen.add(piece)
        vocabulary.push(piece)
      }
    }
  }
  return vocabulary
}

export interface Tokenizer {
  readonly vocabulary: ReadonlyArray<string>
  readonly encode: (text: string) => number[]
  readonly decode: (ids: ReadonlyArray<number>) => string
  /** The text offset at which each token of `ids` starts (for weighting the tokens of an answer by the part they belong to). */
  readonly offsets: (ids: ReadonlyArray<number>) => number[]
  /** Each token's bare form: the id of the word without the space or newline before it, or the token's own id. */
  readonly bare: Int32Array
}

export const makeTokenizer = (vocabulary: ReadonlyArray<string>): Tokenizer => {
  const ids = new Map(vocabulary.map((piece, i) => [piece, i]))
  for (const [k, s] of SPECIALS.entries()) {
    if (vocabulary[k] !== s) throw new RangeError(`tokenizer: token ${k} must be ${s}, found ${JSON.stringify(vocabulary[k])}`)
  }
  const encode = (text: string): number[] => {
    const out: number[] = []
    for (const piece of pieces(text)) {
      const id = ids.get(piece)
      if (id !== undefined) {
        out.push(id)
        continue
      }
      for (const ch of piece) out.push(ids.get(ch) ?? UNKNOWN)
    }
    return out
  }
  const textOf = (id: number): string => (id < SPECIALS.length ? (id === UNKNOWN ? "\uFFFD" : "") : (vocabulary[id] ?? "\uFFFD"))
  const decode = (list: ReadonlyArray<number>): string => list.map(textOf).join("")
  const offsets = (list: ReadonlyArray<number>): number[] => {
    let at = 0
    return list.map((id) => {
      const start = at
      at += textOf(id).length
      return start
    })
  }
  const bare = Int32Array.from(vocabulary, (piece, i) => {
    const word = /^[ \n]([A-Za-z0-9_]+)$/.exec(piece)?.[1]
    return word === undefined ? i : (ids.get(word) ?? i)
  })
  return { vocabulary, encode, decode, offsets, bare }
}
