import { type PolicyInput, questionText } from "../../../core/policy.ts"
import { history, instructionSentences, listedActions, observationCandidates } from "../prompt-reader.ts"

/**
 * What the small policy reads, turned into numbers: the words of each instruction sentence, of
 * each listed action, of each observation description it may write, and of the context (the
 * current observation line, past answers, past observations, verification feedback), as
 * hashed word ids; how many past answers began with each listed action name; and the grid
 * image, area-averaged to a small square. Nothing here comes from outside the prompt and the
 * picture.
 */
export interface FeatureShape {
  /** Hashed vocabulary size (word ids are 1..vocab−1; 0 is never used). */
  readonly vocab: number
  readonly maxSentences: number
  readonly maxActions: number
  readonly maxObservations: number
  /** Context slots keep their last this many words. */
  readonly maxContextWords: number
  /** Counts one-hot encoded up to this value (larger ones share the last slot). */
  readonly maxCount: number
  readonly imageSide: number
}

export const DEFAULT_SHAPE: FeatureShape = {
  vocab: 4096,
  maxSentences: 24,
  maxActions: 12,
  maxObservations: 28,
  maxContextWords: 64,
  maxCount: 24,
  imageSide: 48
}

/** Context slots: current observation line, past answers, past observations, feedback. */
export const CONTEXT_SLOTS = 4

/** Text slots in order: sentences, actions, observations, context (each padded to its maximum). */
export const slotCount = (s: FeatureShape): number => s.maxSentences + s.maxActions + s.maxObservations + CONTEXT_SLOTS

export interface Features {
  readonly sentences: ReadonlyArray<string>
  readonly actions: ReadonlyArray<string>
  readonly observations: ReadonlyArray<string>
  /** Word ids of slot k are words[offsets[k] .. offsets[k+1]). */
  readonly offsets: Uint32Array
  readonly words: Uint16Array
  /** [4 × (maxCount + 1)] one-hot counts: answers so far, then answers naming each of the first three listed action names. */
  readonly counts: Uint8Array
  /** [imageSide² × 3], 0 where there is no image. */
  readonly image: Uint8Array
}

const tokens = (text: string): string[] => text.toLowerCase().match(/[a-z0-9_]+/g) ?? []

export const hashWord = (word: string, vocab: number): number => {
  let h = 2166136261
  for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 16777619)
  return 1 + ((h >>> 0) % (vocab - 1))
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
  const { vocab, maxSentences, maxActions, maxObservations, maxContextWords, maxCount, imageSide } = shape
  const question = questionText(input.chat)
  const sentences = instructionSentences(question).slice(0, maxSentences)
  const actions = listedActions(question).slice(0, maxActions)
  const observations = observationCandidates(sentences).slice(0, maxObservations)
  const past = history(question)
  const feedback = input.chat
    .filter((t) => t.role === "user")
    .slice(1)
    .flatMap((t) => t.content.map((p) => (p.type === "text" ? p.text : "")))
    .join(" ")
    .split("\n")[0]
  const pad = <A>(xs: ReadonlyArray<A>, n: number, empty: A): A[] => [...xs, ...Array.from({ length: n - xs.length }, () => empty)]
  const last = (words: string[]) => words.slice(Math.max(0, words.length - maxContextWords))
  const slots: string[][] = [
    ...pad(sentences.map(tokens), maxSentences, []),
    ...pad(actions.map(tokens), maxActions, []),
    ...pad(observations.map(tokens), maxObservations, []),
    tokens(past.observations[past.observations.length - 1] ?? ""),
    last(past.actions.flatMap(tokens)),
    last(past.observations.slice(0, -1).flatMap(tokens)),
    last(tokens(feedback))
  ]
  const offsets = new Uint32Array(slots.length + 1)
  slots.forEach((s, k) => (offsets[k + 1] = offsets[k] + s.length))
  const words = new Uint16Array(offsets[slots.length])
  slots.forEach((s, k) => s.forEach((w, i) => (words[offsets[k] + i] = hashWord(w, vocab))))
  // how many past answers took each kind of listed action (forward / turn / stop ...)
  const names = [...new Set(actions.map((a) => a.split("(")[0]))]
  const counts = new Uint8Array(4 * (maxCount + 1))
  const put = (slot: number, n: number) => (counts[slot * (maxCount + 1) + Math.min(n, maxCount)] = 1)
  put(0, past.actions.length)
  names.slice(0, 3).forEach((name, k) => put(k + 1, past.actions.filter((a) => a.startsWith(`${name}(`)).length))
  return { sentences, actions, observations, offsets, words, counts, image: shrinkImage(input.image, imageSide) }
}
