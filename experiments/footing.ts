/**
 * What the frontier study and its ablations share: the bases and their format initialisation on
 * NYC, the suites (a validation suite among them), the evaluation points, the learning-rate grids
 * and the seeds — so that an ablation changes one thing and is compared along frontiers on the
 * study's footing.
 */
import { type Arm, type Components, configurations, type Experiment, type FrontierSpec, type SuiteSpec, type SyntheticCityRef } from "../src/core/experiment.ts"
import * as Absolute from "../src/plugins/action-space/absolute.ts"
import * as Relative from "../src/plugins/action-space/relative.ts"
import { DEFAULT_SPLITS } from "../src/plugins/dataset/synth/default.ts"
import study, { BASE_CONFIG } from "./sft_vs_rl.ts"

const HELD_OUT = DEFAULT_SPLITS.train.routes + DEFAULT_SPLITS.eval.routes

/** NYC routes drawn after the default training and evaluation routes of the same city: the test routes. */
const heldOut = (synth: string): SyntheticCityRef => ({ synth, seed: DEFAULT_SPLITS.train.seed, after: HELD_OUT })

/**
 * NYC routes for choosing points and configurations: drawn after the first 1,000 test routes, so
 * that no suite of up to 1,000 episodes shares a route with them (the run checks).
 */
const validation = (synth: string): SyntheticCityRef => ({ synth, seed: DEFAULT_SPLITS.train.seed, after: HELD_OUT + 1000 })
const sf = (synth: string): SyntheticCityRef => ({ synth, seed: DEFAULT_SPLITS.visualOod.seed })

/**
 * The validation suite (NYC routes of their own, absolute directions: where choices are made),
 * then the test suites: in-distribution on NYC routes held out of training, rule-OOD on the same
 * routes in relative directions, and the visual shift in two halves and whole: the NYC look on a
 * street grid at 0° instead of 29° (the same routes turned), the SF look on NYC's 29° grid, the SF
 * look on its own 0° grid. As many routes as `eval_config.num_traj`.
 */
export const FRONTIER_SUITES: ReadonlyArray<SuiteSpec> = [
  { name: "val-indist", title: "In-distribution (validation)", dataset: validation("nyc"), actionSpace: Absolute.layer },
  { name: "indist", title: "In-distribution", dataset: heldOut("nyc"), actionSpace: Absolute.layer },
  { name: "rule-ood", title: "Rule OOD", dataset: heldOut("nyc"), actionSpace: Relative.layer },
  { name: "nyc-grid0", title: "NYC look 0deg grid", dataset: heldOut("nyc@0"), actionSpace: Absolute.layer },
  { name: "sf-grid29", title: "SF look 29deg grid", dataset: sf("sf@29"), actionSpace: Absolute.layer },
  { name: "visual-ood", title: "Visual OOD (SF)", dataset: sf("sf"), actionSpace: Absolute.layer }
]

export const OOD = ["rule-ood", "nyc-grid0", "sf-grid29", "visual-ood"] as const

const [base, init] = study.arms

/** The pretrained base and the format initialisation every method starts from (one epoch of SFT on NYC). */
export const START: ReadonlyArray<Arm> = [base!, init!]

/**
 * Three bases, pretrained alike from their own seeds (pretrain_config.seed 0 is the earlier
 * studies' one), three seeds each: seed S trains from base (S − 1) mod 3. `--quick` runs seeds 1
 * and 2, so it too spans two bases.
 */
export const BASES = [0, 1, 2] as const
export const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8, 9] as const

/** PPO's and RFT's rates: each decays to a tenth over the run (20 updates of 32 optimizer steps). */
export const onPolicy = (lr: number) => ({ "optimizer_config.init_lr": lr, "optimizer_config.end_lr": lr / 10, "optimizer_config.lr_max_steps": 20 * 32 })
const ON_POLICY_RATES = [1e-4, 3e-4, 1e-3]
const SFT_RATES = [3e-4, 1e-3, 3e-3]
/** A configuration's label from its learning rate: `lr3e-4`. */
export const label = (lr: number) => `lr${lr.toExponential()}`

/** SFT from the start: three learning rates, 10 epochs each (~21,000 gradient passes). */
export const sftMethod = (method = "sft"): Arm[] =>
  configurations(
    method,
    { recipe: { kind: "sft", from: "init" }, config: { "sft_config.epochs": 10 }, quick: { "sft_config.epochs": 6 } },
    SFT_RATES.map((lr) => ({ label: label(lr), config: { "sft_config.init_lr": lr, "sft_config.end_lr": lr / 10 } }))
  )

/** PPO from the start: three learning rates, 20 updates of 256 steps × 4 epochs each (~20,500 passes). */
export const rlMethod = (method = "rl", change: { readonly layers?: Components; readonly config?: Readonly<Record<string, unknown>> } = {}): Arm[] =>
  configurations(
    method,
    { recipe: { kind: "ppo", from: "init" }, ...(change.layers === undefined ? {} : { layers: change.layers }) },
    ON_POLICY_RATES.map((lr) => ({ label: label(lr), config: { ...onPolicy(lr), ...change.config } }))
  )

/** RFT from the start on the base's verified-correct samples, with PPO's rollouts, rates and updates. */
export const rftMethod = (method = "rft"): Arm[] =>
  configurations(method, { recipe: { kind: "rft", from: "init", samples: "base" } }, ON_POLICY_RATES.map((lr) => ({ label: label(lr), config: onPolicy(lr) })))

/**
 * The frontier comparison of `methods` from the start: one point per method chosen by its
 * validation per-step accuracy, and that point's configuration as the method's curve.
 */
export const frontierOf = (methods: ReadonlyArray<string>, extra: Partial<FrontierSpec> = {}): FrontierSpec => ({
  methods,
  start: "init",
  indist: "indist",
  ood: OOD,
  validation: "val-indist",
  select: { at: "any", metric: "step" },
  factors: { geometry: "nyc-grid0", appearance: "sf-grid29", both: "visual-ood" },
  ...extra
})

/** An experiment on the study's footing: its bases and seeds, suites, six evaluation points, KL to the base; `--quick` tiny. */
export const onFooting = (e: Pick<Experiment, "name" | "description" | "arms" | "frontier"> & Partial<Experiment>): Experiment => ({
  seeds: SEEDS,
  bases: BASES,
  quickSeeds: [1, 2],
  suites: FRONTIER_SUITES,
  evaluations: 6,
  evaluationLogs: "final",
  klReference: "base",
  ...e,
  config: { ...BASE_CONFIG, "eval_config.num_traj": 100, num_updates: 20, ...e.config },
  quick: { ...study.quick, "sft_config.routes": 32, "eval_config.num_traj": 8, "kl_config.routes": 4, num_updates: 6, num_steps: 48, ...e.quick }
})
