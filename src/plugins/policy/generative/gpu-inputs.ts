/**
 * The generator's batches as its GPU graphs read them (gpu-network.ts): ids as floats in padded
 * blocks, the positions of each id (for the embeddings' gradient and the copy head) and the
 * encoder's additive mask. Host-side work, done once per batch.
 */
import { PAD } from "./tokenizer.ts"

const NEG = -1e9

/** Over a vocabulary of `V` tokens, `N` image patches, `bare[id]` each token's form without its leading space. */
export const makeInputs = (V: number, N: number, bare: Int32Array) => {
  /** Ids as floats, a PAD-padded [rows, width] block from ragged rows. */
  const padded = (xs: ReadonlyArray<ArrayLike<number>>, rowsN: number, width: number): Float32Array => {
    const out = new Float32Array(rowsN * width)
    xs.forEach((x, i) => {
      for (let k = 0; k < Math.min(width, x.length); k++) out[i * width + k] = x[k]!
    })
    return out
  }
  /**
   * The positions of each id in `ids` (row-major), grouped by id: offsets [V + 1] and positions.
   * PAD's positions are left out: nothing downstream reads them (masked as keys, weightless as
   * targets), so their gradient is zero.
   */
  const byId = (ids: Float32Array): { offsets: Float32Array; rows: Float32Array } => {
    const counts = new Uint32Array(V + 1)
    for (const id of ids) if (id !== PAD) counts[id + 1]!++
    for (let v = 0; v < V; v++) counts[v + 1]! += counts[v]!
    const offsets = Float32Array.from(counts)
    const at = counts.slice(0, V)
    const out = new Float32Array(ids.length)
    ids.forEach((id, r) => {
      if (id !== PAD) out[at[id]!++] = r
    })
    return { offsets, rows: out }
  }
  /** The copy head's lists: per batch element and token id, the prompt positions holding it or a token whose bare form it is. */
  const copyLists = (prompt: Float32Array, B: number, P: number) => {
    const offsets = new Float32Array(B * (V + 1))
    const list = new Float32Array(2 * B * P)
    const ids = new Float32Array(2 * B * P)
    const counts = new Int32Array(V)
    const next = new Int32Array(V)
    let at = 0
    for (let b = 0; b < B; b++) {
      counts.fill(0)
      for (let k = 0; k < P; k++) {
        const id = prompt[b * P + k]!
        const bareId = bare[id]!
        // a PAD position's attention is zero (masked)
        if (id !== PAD) {
          counts[id]!++
          if (bareId !== id) counts[bareId]!++
        }
        ids[(b * P + k) * 2] = id
        ids[(b * P + k) * 2 + 1] = bareId !== id ? bareId : -1
      }
      for (let v = 0; v < V; v++) {
        offsets[b * (V + 1) + v] = at
        next[v] = at
        at += counts[v]!
      }
      offsets[b * (V + 1) + V] = at
      for (let k = 0; k < P; k++) {
        const id = prompt[b * P + k]!
        if (id === PAD) continue
        list[next[id]!++] = k
        const bareId = bare[id]!
        if (bareId !== id) list[next[bareId]!++] = k
      }
    }
    return { offsets, list, ids }
  }
  /** The additive mask of the encoder's positions [B, P + N]: the prompt's padding (PAD = 0) and padded batch rows. */
  const maskOf = (prompt: Float32Array, B: number, P: number) => {
    const out = new Float32Array(B * (P + N))
    for (let b = 0; b < B; b++) for (let k = 0; k < P; k++) out[b * (P + N) + k] = prompt[b * P + k] === 0 ? NEG : 0
    return out
  }
  return { padded, byId, copyLists, maskOf }
}
