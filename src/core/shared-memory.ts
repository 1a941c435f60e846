/**
 * Where large shared buffers come from (decoded panoramas that worker threads read). By default a
 * fresh SharedArrayBuffer, whose pages the first writer faults in (docs/measurements.md); a component
 * with idle threads (the street-view tile pool) can supply buffers whose pages it mapped ahead.
 * Always a fresh, zeroed buffer of the size asked.
 */
export type SharedBufferSource = (bytes: number) => SharedArrayBuffer

const fresh: SharedBufferSource = (bytes) => new SharedArrayBuffer(bytes)
let source: SharedBufferSource = fresh

export const sharedBuffer = (bytes: number): SharedArrayBuffer => source(bytes)

/** Supplies the buffers from now on (`undefined`: fresh ones again). */
export const provideSharedBuffers = (supplier: SharedBufferSource | undefined): void => {
  source = supplier ?? fresh
}
