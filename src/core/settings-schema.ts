import { Schema } from "effect"

/**
 * Constrained numbers for settings: a value out of range is an error naming the key (the path)
 * and the range, and `--help` shows the range (it reads these messages).
 */
export const range = (lo: number, hi: number) => Schema.Number.pipe(Schema.between(lo, hi, { message: () => `must be between ${lo} and ${hi}` }))
export const atLeast = (lo: number) => Schema.Int.pipe(Schema.greaterThanOrEqualTo(lo, { message: () => `must be an integer ≥ ${lo}` }))
export const positive = Schema.Number.pipe(Schema.positive({ message: () => "must be > 0" }))
export const nonNegative = Schema.Number.pipe(Schema.nonNegative({ message: () => "must be ≥ 0" }))
export const rate = Schema.Number.pipe(Schema.between(0, 1, { message: () => "must be between 0 and 1" }))
