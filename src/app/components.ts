import { Effect, Layer } from "effect"
import type { ActionSpace } from "../core/action-space.ts"
import { DatasetError } from "../core/dataset.ts"
import { type Arm, type Components, type DatasetRef, type Experiment, mergeComponents, type SyntheticCityRef } from "../core/experiment.ts"
import type { Optimizer } from "../core/optimizer.ts"
import type { Policy } from "../core/policy.ts"
import type { Random } from "../core/random.ts"
import type { Reward } from "../core/reward.ts"
import type { Sharding } from "../core/sharding.ts"
import * as Absolute from "../plugins/action-space/absolute.ts"
import * as Relative from "../plugins/action-space/relative.ts"
import { cityDir, type CityRecipe, type DefaultDatasets, ensureCity } from "../plugins/dataset/synth/default.ts"
import * as AdamW from "../plugins/optimizer/adamw.ts"
import * as TfPolicy from "../plugins/policy/tfjs/layer.ts"
import * as PythonRandom from "../plugins/random/python-random.ts"
import * as Process from "../plugins/reward/process.ts"
import * as Local from "../plugins/sharding/local.ts"
import * as Workers from "../plugins/sharding/workers.ts"
import type { RunConfig } from "./config.ts"

/** Everything a component has once resolved: no part left out. */
export type Resolved = Required<Omit<Components, "tracker">> & Pick<Components, "tracker">

/** What an experiment, an arm or a suite leaves out. */
export const DEFAULT_COMPONENTS: Resolved = {
  dataset: "train",
  actionSpace: Absolute.layer,
  reward: Process.layer,
  policy: TfPolicy.layer(),
  optimizer: AdamW.layer,
  sharding: Local.layer,
  random: PythonRandom.layer
}

/**
 * An arm's components, in order of precedence (later wins): the defaults, the experiment's
 * `layers`, the arm's `reward` and `layers`, a sweep value's. The reference's
 * `env_config.absolute_action`, when set, then picks the action space (see config.ts).
 */
export const armComponents = (experiment: Experiment, arm: Arm, config?: RunConfig): Resolved => {
  const merged = mergeComponents(
    DEFAULT_COMPONENTS,
    experiment.layers,
    arm.reward === undefined ? undefined : { reward: arm.reward },
    arm.layers,
    arm.sweep?.layers
  ) as Resolved
  return withConfiguredRules(merged, config)
}

/** Components for a single command (`virl train`, `virl eval`): the defaults and what the config says. */
export const commandComponents = (config: RunConfig, overrides: Components = {}): Resolved =>
  withConfiguredRules(mergeComponents(DEFAULT_COMPONENTS, overrides) as Resolved, config)

const withConfiguredRules = (c: Resolved, config: RunConfig | undefined): Resolved => {
  const rule = config?.env_config.absolute_action
  const ruled = rule === null || rule === undefined ? c : { ...c, actionSpace: rule ? Absolute.layer : Relative.layer }
  const sharding = config?.sharding
  return sharding === null || sharding === undefined ? ruled : { ...ruled, sharding: shardingLayer(sharding) }
}

/** The Sharding layer `sharding` names: local, workers (one per core but one) or workers:N. */
export const shardingLayer = (sharding: string): Layer.Layer<Sharding> => {
  if (sharding === "local") return Local.layer
  const n = /^workers:(\d+)$/.exec(sharding)
  return Workers.layer(n === null ? undefined : Number(n[1]))
}

/** The services training obtains from the context: action space, reward, policy, optimizer, sharding, generators. */
export const trainingLayer = (c: Resolved): Layer.Layer<ActionSpace | Reward | Policy | Optimizer | Sharding | Random> =>
  Layer.mergeAll(c.actionSpace, c.reward, c.policy, c.optimizer, c.sharding, c.random)

/** A synthetic city's recipe; `routes` when the reference leaves them to its user (a suite's episodes). */
export const cityRecipe = (ref: SyntheticCityRef, routes?: number): CityRecipe => {
  const count = ref.routes ?? routes
  if (count === undefined) throw new RangeError(`the synthetic city ${ref.synth} (seed ${ref.seed}) needs a number of routes`)
  return { city: ref.synth, seed: ref.seed, routes: count, after: ref.after ?? 0 }
}

/** The folder a dataset reference names (a synthetic city's is in the cache: see `ensureDataset`). */
export const datasetDir = (ref: DatasetRef, datasets: DefaultDatasets, routes?: number): string => {
  if (typeof ref !== "string") return "dir" in ref ? ref.dir : cityDir(cityRecipe(ref, routes))
  switch (ref) {
    case "train":
      return datasets.train
    case "eval":
      return datasets.eval
    case "visual-ood":
      return datasets.visualOod
  }
}

/** The folder a dataset reference names, a synthetic city generated first if the cache lacks it. */
export const ensureDataset = (ref: DatasetRef, datasets: DefaultDatasets, routes?: number, progress?: Parameters<typeof ensureCity>[1]) =>
  typeof ref === "object" && "synth" in ref
    ? Effect.flatMap(
      Effect.try({ try: () => cityRecipe(ref, routes), catch: (e) => new DatasetError({ path: ref.synth, message: (e as Error).message }) }),
      (recipe) => ensureCity(recipe, progress)
    )
    : Effect.succeed(datasetDir(ref, datasets, routes))

/** Runs `effect` with the default layers (and what `config` says of the action space): single commands and tests. */
export const withDefaults = <A, E, R>(config: RunConfig, effect: Effect.Effect<A, E, R>) => Effect.provide(effect, trainingLayer(commandComponents(config)))
