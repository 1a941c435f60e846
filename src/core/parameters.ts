/**
 * A model's parameters by name, each a flat float array: what a learner exposes, an optimizer
 * updates in place and a checkpoint stores.
 */
export type Parameters = Map<string, Float32Array>
