/** Milliseconds per call of `f`: `warmup` calls first, then as many as fit in `seconds`. */
export const msPerCall = async (f: () => Promise<unknown>, seconds: number, warmup: number): Promise<number> => {
  for (let i = 0; i < warmup; i++) await f()
  let n = 0
  const t0 = performance.now()
  while (performance.now() - t0 < seconds * 1000) {
    await f()
    n++
  }
  return (performance.now() - t0) / n
}
