import { Layer } from "effect"
import { Random, type RandomSource, type Rng, type RngSnapshot } from "../../core/random.ts"

/**
 * CPython's `random` module: MT19937 seeded by `init_by_array` from the seed's 32-bit words,
 * `random()` from 53 bits of two outputs, `randint`/`choice` through `_randbelow` with
 * `getrandbits` rejection sampling. The reference draws everything from it (spec §3).
 */
const N = 624
const M = 397
const MATRIX_A = 0x9908b0df
const UPPER_MASK = 0x80000000
const LOWER_MASK = 0x7fffffff

const seedWords = (seed: bigint): number[] => {
  let magnitude = seed < 0n ? -seed : seed
  const words: number[] = []
  while (magnitude > 0n) {
    words.push(Number(magnitude & 0xffffffffn))
    magnitude >>= 32n
  }
  return words.length === 0 ? [0] : words
}

const initGenrand = (mt: Uint32Array, s: number): void => {
  mt[0] = s >>> 0
  for (let i = 1; i < N; i++) {
    const prev = mt[i - 1] ^ (mt[i - 1] >>> 30)
    mt[i] = (Math.imul(1812433253, prev) + i) >>> 0
  }
}

const initByArray = (mt: Uint32Array, key: ReadonlyArray<number>): void => {
  initGenrand(mt, 19650218)
  let i = 1
  let j = 0
  for (let k = Math.max(N, key.length); k > 0; k--) {
    const prev = mt[i - 1] ^ (mt[i - 1] >>> 30)
    mt[i] = ((mt[i] ^ Math.imul(prev, 1664525)) + key[j] + j) >>> 0
    i++
    j++
    if (i >= N) {
      mt[0] = mt[N - 1]
      i = 1
    }
    if (j >= key.length) j = 0
  }
  for (let k = N - 1; k > 0; k--) {
    const prev = mt[i - 1] ^ (mt[i - 1] >>> 30)
    mt[i] = ((mt[i] ^ Math.imul(prev, 1566083941)) - i) >>> 0
    i++
    if (i >= N) {
      mt[0] = mt[N - 1]
      i = 1
    }
  }
  mt[0] = 0x80000000
}

export class PythonRandom implements Rng {
  private readonly mt = new Uint32Array(N)
  private index = N + 1
  private seedText: string

  constructor(seed: number | bigint) {
    this.seedText = String(seed)
    this.seed(seed)
  }

  seed(seed: number | bigint): void {
    if (typeof seed === "number" && !Number.isInteger(seed)) {
      throw new RangeError(`seed must be an integer, got ${seed}`)
    }
    this.seedText = String(seed)
    initByArray(this.mt, seedWords(BigInt(seed)))
    this.index = N
  }

  private next32(): number {
    const mt = this.mt
    if (this.index >= N) {
      let kk = 0
      for (; kk < N - M; kk++) {
        const y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK)
        mt[kk] = mt[kk + M] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0)
      }
      for (; kk < N - 1; kk++) {
        const y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK)
        mt[kk] = mt[kk + (M - N)] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0)
      }
      const y = (mt[N - 1] & UPPER_MASK) | (mt[0] & LOWER_MASK)
      mt[N - 1] = mt[M - 1] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0)
      this.index = 0
    }
    let y = mt[this.index++]
    y ^= y >>> 11
    y ^= (y << 7) & 0x9d2c5680
    y ^= (y << 15) & 0xefc60000
    y ^= y >>> 18
    return y >>> 0
  }

  readonly random = (): number => {
    const a = this.next32() >>> 5
    const b = this.next32() >>> 6
    return (a * 67108864 + b) / 9007199254740992
  }

  /** `getrandbits(k)`: 32-bit words, least significant first, the last one shifted down. */
  getrandbits(k: number): bigint {
    if (k <= 32) return BigInt(k === 0 ? 0 : this.next32() >>> (32 - k))
    let result = 0n
    let shift = 0n
    for (let remaining = k; remaining > 0; remaining -= 32) {
      let word = this.next32()
      if (remaining < 32) word >>>= 32 - remaining
      result |= BigInt(word) << shift
      shift += 32n
    }
    return result
  }

  private randbelow(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`randbelow needs a positive integer, got ${n}`)
    const k = n.toString(2).length
    if (k <= 32) {
      let r = k === 32 ? this.next32() : this.next32() >>> (32 - k)
      while (r >= n) r = k === 32 ? this.next32() : this.next32() >>> (32 - k)
      return r
    }
    const bound = BigInt(n)
    let r = this.getrandbits(k)
    while (r >= bound) r = this.getrandbits(k)
    return Number(r)
  }

  readonly randint = (a: number, b: number): number => {
    if (b < a) throw new RangeError(`empty range for randint(${a}, ${b})`)
    return a + this.randbelow(b - a + 1)
  }

  readonly choiceIndex = (n: number): number => this.randbelow(n)

  readonly snapshot = (): RngSnapshot => ({
    algorithm: "python-mt19937",
    seed: this.seedText,
    state: [...this.mt, this.index]
  })

  readonly restore = (snapshot: RngSnapshot): void => {
    if (snapshot.algorithm !== "python-mt19937" || snapshot.state.length !== N + 1) {
      throw new Error(`cannot restore a '${snapshot.algorithm}' generator state into python-mt19937`)
    }
    this.mt.set(snapshot.state.slice(0, N))
    this.index = snapshot.state[N]
    this.seedText = snapshot.seed
  }
}

/** Python's `random` (Mersenne Twister, seeded as CPython seeds it): the reference's generator, draw for draw. */
export const source: RandomSource = { name: "python-mt19937", make: (seed) => new PythonRandom(seed) }

/** The default Random layer: every generator of a run is Python's, seeded as the reference seeds it. */
export const layer: Layer.Layer<Random> = Layer.succeed(Random, source)
