import { questionText, type PolicyInput } from "../../../core/policy.ts"
import { history, instructionSentences, listedActions } from "../prompt-reader.ts"

/**
 * What the small policy reads, turned into numbers: hashed bags of words for each instruction
 * sentence, each listed action, the current observation line, the past answers and observations
 * and any verification feedback; how many past answers began with each listed action name; and
 * the grid image, area-averaged to a small square. Nothing here comes from outside the prompt
 * and the picture.
 */
export interface FeatureShape {
  readonly vocab: number
  readonly maxSentences: number
  readonly maxActions: number
  /** Counts one-hot encoded up to this value (larger ones share the last slot). */
  readonly maxCount: number
  readonly imageSide: number
}

export const DEFAULT_SHAPE: FeatureShape = { vocab: 512, maxSentences: 24, maxActions: 12, maxCount: 24, imageSide: 48 }

export interface Features {
  readonly sentences: ReadonlyArray<string>
  readonly actions: ReadonlyArray<string>
  /** [maxSentences × vocab] word counts. */
  readonly sentenceWords: Uint8Array
  /** [maxActions × vocab] */
  readonly actionWords: Uint8Array
  /** [4 × vocab]: current observation, past answers, past observations, feedback. */
  readonly contextWords: Uint8Array
  /** [4 × (maxCount + 1)] one-hot counts: answers so far, then answers naming each of the first three listed action names. */
  readonly counts: Uint8Array
  /** [imageSide² × 3], 0 where there is no image. */
  readonly image: Uint8Array
}

const words = (text: string): string[] => text.toLowerCase().match(/[a-z0-9_]+/g) ?? []

export const hashWord = (word: string, vocab: number): number => {
  let h = 2166136261
  for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 16777619)
  return (h >>> 0) % vocab
}

const addWords = (out: Uint8Array, offset: number, text: string, vocab: number): void => {
  for (const w of words(text)) {
    const k = offset + hashWord(w, vocab)
    if (out[k] < 255) out[k] += 1
  }
}

/** Area-average resize of packed RGB to side × side. */
export const shrinkImage = (image: PolicyInput["image"], side: number): Uint8Array => {
  const out = new Uint8Array(side * side * 3)
  if (image === null) return out
  const { width, height, rgb } = image
  for (let y = 0; y < side; y++) {
    const y0 = Math.floor((y * height) / side)
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * height) / side))
    for (let x = 0; x < side; x++) {
      const x0 = Math.floor((x * width) / side)
      const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * width) / side))
      let r = 0
      let g = 0
      let b = 0
      for (let yy = y0; yy < y1; yy++) {
        for (let xx = x0; xx < x1; xx++) {
          const o = (yy * width + xx) * 3
          r += rgb[o]
          g += rgb[o + 1]
          b += rgb[o + 2]
        }
      }
      const n = (y1 - y0) * (x1 - x0)
      const o = (y * side + x) * 3
      out[o] = r / n
      out[o + 1] = g / n
      out[o + 2] = b / n
    }
  }
  return out
}

export const readFeatures = (input: PolicyInput, shape: FeatureShape = DEFAULT_SHAPE): Features => {
  const { vocab, maxSentences, maxActions, maxCount, imageSide } = shape
  const question = questionText(input.chat)
  const sentences = instructionSentences(question).slice(0, maxSentences)
  const actions = listedActions(question).slice(0, maxActions)
  const past = history(question)
  const sentenceWords = new Uint8Array(maxSentences * vocab)
  sentences.forEach((s, i) => addWords(sentenceWords, i * vocab, s, vocab))
  const actionWords = new Uint8Array(maxActions * vocab)
  actions.forEach((a, i) => addWords(actionWords, i * vocab, a, vocab))
  const contextWords = new Uint8Array(4 * vocab)
  const observations = past.observations
  addWords(contextWords, 0, observations[observations.length - 1] ?? "", vocab)
  for (const a of past.actions) addWords(contextWords, vocab, a, vocab)
  for (const o of observations.slice(0, -1)) addWords(contextWords, 2 * vocab, o, vocab)
  const feedback = input.chat
    .filter((t) => t.role === "user")
    .slice(1)
    .flatMap((t) => t.content.map((p) => (p.type === "text" ? p.text : "")))
    .join(" ")
    .split("\n")[0]
  addWords(contextWords, 3 * vocab, feedback, vocab)
  // how many past answers took each kind of listed action (forward / turn / stop ...)
  const names = [...new Set(actions.map((a) => a.split("(")[0]))]
  const counts = new Uint8Array(4 * (maxCount + 1))
  const put = (slot: number, n: number) => (counts[slot * (maxCount + 1) + Math.min(n, maxCount)] = 1)
  put(0, past.actions.length)
  names.slice(0, 3).forEach((name, k) => put(k + 1, past.actions.filter((a) => a.startsWith(`${name}(`)).length))
  return { sentences, actions, sentenceWords, actionWords, contextWords, counts, image: shrinkImage(input.image, imageSide) }
}
