import type { ChatTurn } from "../../../core/environment.ts"
import type { PolicyInput } from "../../../core/policy.ts"
import { shrinkImage } from "../tfjs/features.ts"
import { type NetworkShape, patchCount, patchSize } from "./model.ts"
import { EOS, PAD, type Tokenizer } from "./tokenizer.ts"

/** What the generative network reads of an input, and which tokens of an answer are its action's. */

/** The conversation as one text: each turn's text parts, turns separated by a blank line. */
const conversation = (chat: ReadonlyArray<ChatTurn>): string =>
  chat.map((turn) => turn.content.map((part) => (part.type === "text" ? part.text : "")).join("")).join("\n\n")

/** The prompt's tokens (its first and last halves when longer than the network reads) and the image's patches. */
export const readInput = (shape: NetworkShape, tokenizer: Tokenizer, input: PolicyInput): { prompt: Int32Array; patches: Float32Array } => {
  const P = shape.promptTokens
  const N = patchCount(shape)
  const S = patchSize(shape)
  const ids = tokenizer.encode(conversation(input.chat))
  const kept = ids.length <= P ? ids : [...ids.slice(0, Math.floor(P / 2)), ...ids.slice(ids.length - (P - Math.floor(P / 2)))]
  const side = shape.imageSide
  const image = shrinkImage(input.image, side)
  const patches = new Float32Array(N * S)
  const per = side / shape.patch
  for (let py = 0; py < per; py++) {
    for (let px = 0; px < per; px++) {
      const k = py * per + px
      let o = 0
      for (let y = 0; y < shape.patch; y++) {
        for (let x = 0; x < shape.patch; x++) {
          const at = ((py * shape.patch + y) * side + px * shape.patch + x) * 3
          for (let c = 0; c < 3; c++) patches[k * S + o++] = input.image === null ? 0 : image[at + c]! / 255 - 0.5
        }
      }
    }
  }
  return { prompt: Int32Array.from(kept), patches }
}

/** A batch's prompts padded to its longest (PAD after each), and its patches, as flat arrays. */
export const padded = (shape: NetworkShape, batch: ReadonlyArray<{ prompt: Int32Array; patches: Float32Array }>) => {
  const N = patchCount(shape)
  const S = patchSize(shape)
  const longest = Math.max(1, ...batch.map((b) => b.prompt.length))
  const ids = new Int32Array(batch.length * longest).fill(PAD)
  const patches = new Float32Array(batch.length * N * S)
  batch.forEach((b, i) => {
    ids.set(b.prompt, i * longest)
    patches.set(b.patches, i * N * S)
  })
  return { ids, longest, patches }
}

/** 1 for the tokens at or after the `"action"` key, and for the end token. */
export const actionTokens = (tokenizer: Tokenizer, ids: ReadonlyArray<number>): Uint8Array => {
  const text = tokenizer.decode(ids)
  const at = text.indexOf('"action"')
  const offsets = tokenizer.offsets(ids)
  return Uint8Array.from(ids, (id, k) => (id === EOS || (at >= 0 && offsets[k]! + tokenizer.decode([id]).length > at) ? 1 : 0))
}
