/**
 * A network's parameters as one flat array, in the order of its parameter specs: what a GPU
 * policy keeps in one buffer (its parameters, gradients and AdamW moments alike).
 */
export interface ParameterLayout {
  readonly total: number
  /** Each parameter's first float in the flat array. */
  readonly offset: Readonly<Record<string, number>>
  readonly size: Readonly<Record<string, number>>
  /** Arrays by parameter as one flat array (a missing one zero); an unknown name or a wrong size is an error. */
  readonly flatten: (arrays: ReadonlyMap<string, Float32Array>) => Float32Array<ArrayBuffer>
  /** A flat array as one array per parameter: views into it, or copies. */
  readonly split: (flat: Float32Array, options?: { readonly copy: boolean }) => Map<string, Float32Array>
}

export const parameterLayout = (specs: ReadonlyArray<{ readonly name: string; readonly shape: ReadonlyArray<number> }>): ParameterLayout => {
  const offset: Record<string, number> = {}
  const size: Record<string, number> = {}
  let total = 0
  for (const spec of specs) {
    offset[spec.name] = total
    size[spec.name] = spec.shape.reduce((a, b) => a * b, 1)
    total += size[spec.name]!
  }
  return {
    total,
    offset,
    size,
    flatten: (arrays) => {
      const flat = new Float32Array(total)
      for (const [name, values] of arrays) {
        const at = offset[name]
        if (at === undefined) throw new Error(`no parameter ${name} in this network`)
        if (values.length !== size[name]) throw new RangeError(`${name} holds ${values.length} values where the network has ${size[name]}`)
        flat.set(values, at)
      }
      return flat
    },
    split: (flat, options) =>
      new Map(specs.map((spec) => {
        const at = offset[spec.name]!
        const part = flat.subarray(at, at + size[spec.name]!)
        return [spec.name, options?.copy === true ? part.slice() : part]
      }))
  }
}
