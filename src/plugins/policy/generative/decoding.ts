/**
 * The generative policy's decoding bookkeeping, shared by its tfjs path and its GPU paths: what
 * each row has written, the log-softmax of a step's logits and the choice of the next token
 * (forced along a given answer, greedy, or drawn with the run's generator).
 */
import type { Rng } from "../../../core/random.ts"
import { drawn, logPartition, mostLikely } from "../sampling.ts"
import { EOS } from "./tokenizer.ts"

export interface DecodeOptions {
  readonly temperature: number
  readonly greedy: boolean
  readonly along?: ReadonlyArray<ReadonlyArray<number>>
  readonly full?: boolean
}

/** One row of logits (at `offset`, `n` of them) as log-probabilities at the temperature. */
export const logSoftmaxRow = (logits: Float32Array, offset: number, n: number, temperature: number): Float32Array => {
  const { t, logZ } = logPartition(logits, offset, n, temperature)
  const out = new Float32Array(n)
  for (let k = 0; k < n; k++) out[k] = logits[offset + k]! / t - logZ
  return out
}

/**
 * Decoding over a vocabulary of `V` tokens, at most `T` of them per answer, its draws from `rng`.
 * A sampling call draws its uniforms up front, one per row and step ([T, rows], row-major by
 * step) whether or not the row is still writing then: the paths that decode on the GPU, several
 * steps per submission, and in JavaScript, one step at a time, then draw alike.
 */
export const makeDecoding = (rng: Rng, V: number, T: number) => {
  /** What decoding has written so far, per row, and the draws its sampling rows read. */
  const writing = (B: number, options: DecodeOptions) => ({
    written: Array.from({ length: B }, (): number[] => []),
    logProbs: Array.from({ length: B }, (): number[] => []),
    distributions: Array.from({ length: B }, (): Float32Array[] => []),
    done: new Array<boolean>(B).fill(false),
    draws: options.greedy || options.along !== undefined ? undefined : Float32Array.from({ length: T * B }, () => rng.random())
  })
  type Writing = ReturnType<typeof writing>
  /** Row i's token at step t, its log-probability (and whole log-distribution): the row ends at the end token or its forced answer's end. */
  const record = (w: Writing, i: number, t: number, id: number, logProb: number, forced: ReadonlyArray<number> | undefined, lp?: Float32Array) => {
    w.written[i]!.push(id)
    w.logProbs[i]!.push(logProb)
    if (lp !== undefined) w.distributions[i]!.push(lp)
    if (id === EOS || (forced !== undefined && t + 1 >= forced.length)) w.done[i] = true
  }
  /** Every unfinished row's token from the step's logits [rows, V], log-softmax and choice in JavaScript. */
  const fromLogits = (
    w: Writing,
    logits: Float32Array,
    t: number,
    options: DecodeOptions
  ) => {
    for (let i = 0; i < w.done.length; i++) {
      if (w.done[i]) continue
      const lp = logSoftmaxRow(logits, i * V, V, options.temperature)
      const forced = options.along?.[i]
      const id = choose(lp, forced, t, options.greedy, w.draws?.[t * w.done.length + i] ?? 0)
      record(w, i, t, id, lp[id]!, forced, options.full === true ? lp : undefined)
    }
  }

  /** The next token of a row from its log-distribution: forced, greedy, or sampled by inverting it at the uniform draw `u`. */
  const choose = (
    lp: Float32Array,
    forced: ReadonlyArray<number> | undefined,
    t: number,
    greedy: boolean,
    u: number
  ): number => {
    if (forced !== undefined) return forced[t] ?? EOS
    return greedy ? mostLikely(lp) : drawn(lp, u)
  }
  return { writing, record, fromLogits }
}
