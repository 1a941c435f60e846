import type { DecodeOptions, makeDecoding } from "./decoding.ts"
import type { GpuNetwork } from "./gpu-network.ts"
import { BOS, EOS, PAD } from "./tokenizer.ts"

/**
 * The generative policy's decoding on the GPU's own kernels: the encoder once, then the decoding
 * steps — several per submission, the tokens chosen on the GPU — unless `full` asks for every
 * step's whole distribution, which is read back and chosen from step by step. Its bookkeeping
 * (what each row wrote, the draws) is the tfjs path's (decoding.ts), so both write alike.
 */
export const decodeOnGpu = async (
  gpu: GpuNetwork,
  decoding: ReturnType<typeof makeDecoding>,
  limits: { readonly answerTokens: number; readonly stepsPerSubmission: number },
  batch: ReadonlyArray<{ prompt: Int32Array; patches: Float32Array }>,
  options: DecodeOptions
) => {
  const { writing, record, fromLogits } = decoding
  const B = batch.length
  const T = limits.answerTokens
  const session = await gpu.start(batch.map((b) => b.prompt), batch.map((b) => b.patches))
  const w = writing(B, options)
  const { done } = w
  let values: Float32Array | undefined
  if (options.full !== true) {
    const modes = new Float32Array(T * B)
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < B; i++) {
        const forced = options.along?.[i]
        modes[t * B + i] = forced !== undefined ? (forced[t] ?? EOS) : options.greedy ? -1 : -2
      }
    }
    const next = session.choosing({ modes, uniforms: w.draws, temperature: options.temperature })
    for (let t = 0; t < T && done.some((x) => !x);) {
      const k = Math.min(limits.stepsPerSubmission, T - t)
      const c = await next(k)
      if (t === 0) values = c.values
      for (let s = 0; s < k; s++) {
        for (let i = 0; i < B; i++) if (!done[i]) record(w, i, t + s, c.ids[s * B + i]!, c.logProbs[s * B + i]!, options.along?.[i])
      }
      t += k
    }
  } else {
    for (let t = 0; t < T && done.some((x) => !x); t++) {
      const tokens = w.written.map((row) => (t === 0 ? BOS : (row[t - 1] ?? PAD)))
      const { logits, values: v } = await session.step(tokens, t)
      if (t === 0) values = Float32Array.from(v)
      fromLogits(w, logits, t, options)
    }
  }
  return { written: w.written, logProbs: w.logProbs, values: values ?? new Float32Array(B), distributions: w.distributions }
}
