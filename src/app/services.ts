import { Effect, Layer, Option } from "effect"
import * as fs from "node:fs"
import { DatasetError } from "../core/dataset.ts"
import { Optimizer } from "../core/optimizer.ts"
import type { PolicySettings } from "../core/policy.ts"
import { type DefaultDatasets, defaultPaths, ensureDefault } from "../plugins/dataset/synth/default.ts"
import * as VirlRoutes from "../plugins/dataset/virl-routes.ts"
import { defaultConfig } from "../plugins/environment/virl/config.ts"
import * as Virl from "../plugins/environment/virl/layer.ts"
import * as Threaded from "../plugins/environment/virl/threaded.ts"
import { Sharding } from "../core/sharding.ts"
import type { ActionSpace } from "../core/action-space.ts"
import type { Environment, EnvironmentError } from "../core/environment.ts"
import type { Random } from "../core/random.ts"
import type { Reward } from "../core/reward.ts"
import type { RunConfig } from "./config.ts"
import { textSetting } from "../core/settings.ts"

/*
 * What a run's phases build from its config, with the layers the context gives them: the
 * environment over a dataset, the policy's settings, each phase's optimizer, and the datasets.
 * Which layers an arm gets in the first place is components.ts's.
 */

/**
 * The V-IRL environment of a run over one dataset, with its own generator (the context's Random
 * layer makes it from `seed`); the action space and the reward come from the context (the arm's
 * or the suite's layers).
 */
export const environmentLayer = (
  config: RunConfig,
  dataDir: string,
  options: { readonly numEnvs?: number; readonly seed?: number; readonly instructionVariants?: boolean } = {}
) => {
  // the run's env_config is the environment's own settings (VirlEnvSettings) and the rules' choice, which the layers make
  const { absolute_action: _, ...settings } = config.env_config
  const env = defaultConfig({ ...settings, instruction_variants: options.instructionVariants ?? false })
  const numEnvs = options.numEnvs ?? config.num_processes
  const seed = options.seed ?? config.seed
  // the Sharding layer decides where the environments step: here, or split over worker threads
  return Layer.unwrapEffect(
    Effect.map(Effect.serviceOption(Sharding), (sharding): Layer.Layer<Environment, EnvironmentError | DatasetError, ActionSpace | Reward | Random> => {
      const workers = Option.match(sharding, { onNone: () => 1, onSome: (s) => s.environmentWorkers })
      return workers > 1 && numEnvs > 1
        ? Threaded.layer(env, dataDir, numEnvs, workers, seed)
        : Virl.layer(env, numEnvs, seed).pipe(Layer.provide(VirlRoutes.layer(dataDir)))
    })
  )
}

/** What a run tells its policy plugin. */
export const policySettings = (config: RunConfig): PolicySettings => ({
  policy_config: config.policy_config,
  thought_prob_coef: config.generation_config.thought_prob_coef,
  backend: config.backend
})

/** PPO's optimizer, from the run's Optimizer layer: `optimizer_config`, PPO's clipping, accumulation. */
export const ppoOptimizer = (config: RunConfig) =>
  Effect.map(Optimizer, (o) =>
    o.make({
      ...config.optimizer_config,
      max_grad_norm: config.ppo_config.max_grad_norm,
      grad_accum_steps: config.grad_accum_steps
    }))

/** Behaviour cloning's optimizer: a linear decay from init_lr to end_lr over the whole fit; Adam's betas, eps and weight decay from `optimizer_config`. */
export const sftOptimizer = (
  config: RunConfig,
  settings: { readonly init_lr: number; readonly end_lr: number; readonly max_grad_norm: number },
  steps: number
) =>
  Effect.map(Optimizer, (o) =>
    o.make({
      init_lr: settings.init_lr,
      end_lr: settings.end_lr,
      lr_max_steps: steps,
      eps: config.optimizer_config.eps,
      beta1: config.optimizer_config.beta1,
      beta2: config.optimizer_config.beta2,
      weight_decay: config.optimizer_config.weight_decay,
      max_grad_norm: settings.max_grad_norm,
      grad_accum_steps: 1
    }))

/**
 * The datasets experiments run on: VIRL_DATASETS=DIR when set (DIR/nyc-train, DIR/nyc-eval,
 * DIR/sf — e.g. the real SFTvsRL_Data routes arranged so), else the default synthetic cities,
 * generated on first use (with a progress bar on stderr).
 */
export const defaultDatasets = (onProgress?: (done: number, total: number) => void): Effect.Effect<DefaultDatasets, DatasetError> => {
  const root = textSetting("VIRL_DATASETS")
  if (root !== undefined) {
    const paths = defaultPaths(root)
    const missing = [paths.train, paths.eval, paths.visualOod].filter((p) => !fs.existsSync(p))
    return missing.length === 0
      ? Effect.succeed(paths)
      : Effect.fail(new DatasetError({ path: root, message: `VIRL_DATASETS: missing ${missing.join(", ")} (expected nyc-train, nyc-eval and sf folders)` }))
  }
  return ensureDefault({ ...(onProgress === undefined ? {} : { onProgress }), log: (line) => process.stderr.write(`${line}\n`) })
}

export { defaultPaths }
