import { Effect, Layer } from "effect"
import * as path from "node:path"
import { type Checkpoint, loadCheckpoint } from "../core/checkpoint.ts"
import { Environment } from "../core/environment.ts"
import { writeFileAtomic } from "../core/files.ts"
import { type AnswerKind, runSuite, type SuiteMetrics } from "../core/evaluation.ts"
import { ActionSpace } from "../core/action-space.ts"
import { NOT_FOUND, parseOutput } from "../domain/virl/output-parsing.ts"
import type { PolicyError, PolicyService } from "../core/policy.ts"
import { readRoutes, ROUTES_FILE } from "../plugins/dataset/virl-routes.ts"
import { oracle } from "../plugins/policy/oracle.ts"
import * as OpenAi from "../plugins/policy/openai.ts"
import { defaultOpenAiOptions } from "../plugins/policy/openai.ts"
import * as RandomPolicy from "../plugins/policy/random.ts"
import * as Generative from "../plugins/policy/generative/layer.ts"
import { Random } from "../core/random.ts"
import type { RunConfig } from "./config.ts"
import type { DefaultDatasets } from "../plugins/dataset/synth/default.ts"
import { environmentLayer } from "./services.ts"
import { DEFAULT_COMPONENTS, ensureDataset } from "./components.ts"
import { PAPER_SUITE_NAMES } from "./suites.ts"
import type { SuiteSpec } from "../core/experiment.ts"
import { type TraceError, traceWriter } from "./traces.ts"
import type { DatasetError } from "../core/dataset.ts"
import type { EnvironmentError } from "../core/environment.ts"
import { buildPolicy, releasePolicy } from "./train.ts"

export const SUITES = PAPER_SUITE_NAMES
export type SuiteName = (typeof SUITES)[number]

/** A policy stored in a checkpoint folder (read here unless `loaded`), built by the run's Policy layer (the one that wrote it). */
export const policyFromCheckpoint = (dir: string, config: RunConfig, loaded?: Checkpoint) =>
  Effect.gen(function*() {
    const checkpoint = loaded ?? (yield* loadCheckpoint(dir))
    const { policy } = yield* buildPolicy(config, (yield* Random).make(config.seed), { checkpoint, path: dir })
    return policy
  })

/** `policyFromCheckpoint`, released when the scope closes. */
export const scopedPolicyFromCheckpoint = (dir: string, config: RunConfig, loaded?: Checkpoint) =>
  Effect.acquireRelease(policyFromCheckpoint(dir, config, loaded), releasePolicy)

/**
 * The command line's `--policy`: `oracle`, `random`, `openai:MODEL` (endpoint: `endpoint` or
 * OPENAI_BASE_URL), or a checkpoint folder (read by the layer of the policy it holds).
 */
export const loadPolicy = (spec: string, config: RunConfig, endpoint?: string) =>
  Effect.gen(function*() {
    if (spec === "oracle") return oracle as PolicyService
    if (spec === "random") return RandomPolicy.make((yield* Random).make(config.seed))
    if (spec.startsWith("openai:")) return OpenAi.make(defaultOpenAiOptions(spec.slice("openai:".length), endpoint))
    // the layer that made the checkpoint's policy: a generator's, or the default
    const stored = yield* loadCheckpoint(spec)
    const layer = stored.policy.name === Generative.POLICY_NAME ? Generative.layer() : DEFAULT_COMPONENTS.policy
    return yield* Effect.provide(policyFromCheckpoint(spec, config, stored), layer)
  })

/** Whether an answer names an action the parser finds, and whether the action space has it. */
const answerKindOf = (actions: ReadonlyArray<string>) => (text: string): AnswerKind => {
  const action = parseOutput(text).action
  return typeof action !== "string" || action === NOT_FOUND ? "unparsable" : actions.includes(action) ? "listed" : "outside"
}

/** Episodes of a suite: its own number, or eval_config's (num_traj_visual for the visual-OOD data). */
export const suiteEpisodes = (suite: SuiteSpec, config: RunConfig): number =>
  suite.episodes ?? (suite.dataset === "visual-ood" ? config.eval_config.num_traj_visual : config.eval_config.num_traj)

export const evaluateSuite = (
  config: RunConfig,
  policy: PolicyService,
  suite: SuiteSpec,
  datasets: DefaultDatasets,
  options: {
    readonly data?: string
    readonly logFile?: string
    /** Episode traces for `virl view` (see traces.ts): the file, the run folder for frames, and whether to save frames. */
    readonly traces?: { readonly file: string; readonly runDir: string; readonly frames: boolean }
    readonly onEpisode?: (done: number, total: number) => void
  } = {}
): Effect.Effect<SuiteMetrics, DatasetError | EnvironmentError | PolicyError | TraceError, Random> =>
  Effect.gen(function*() {
    const wanted = suiteEpisodes(suite, config)
    const dir = options.data ?? (yield* ensureDataset(suite.dataset, datasets, wanted))
    const lines: string[] = []
    const traces = options.traces === undefined ? undefined : traceWriter(options.traces.file, options.traces.runDir, options.traces.frames)
    const routes = (yield* readRoutes(path.join(dir, ROUTES_FILE))).length
    const numTraj = config.eval_config.order ? Math.min(wanted, routes) : wanted
    const metrics = yield* Effect.provide(
      Effect.flatMap(Effect.zip(Environment, ActionSpace), ([env, space]) =>
        runSuite(env, policy, {
          // a generator can write what no listed action is (a policy choosing among them cannot)
          ...(policy.name === Generative.POLICY_NAME ? { answerKind: answerKindOf(space.actions) } : {}),
          numTraj,
          order: config.eval_config.order,
          act: { temperature: config.generation_config.temperature, greedy: config.eval_config.greedy },
          ...(options.logFile === undefined ? {} : { log: (line: unknown) => lines.push(JSON.stringify(line)) }),
          ...(options.onEpisode === undefined ? {} : { onEpisode: options.onEpisode }),
          ...(traces === undefined ? {} : { record: traces.record })
        })),
      environmentLayer(config, dir, { seed: config.eval_config.seed, numEnvs: Math.max(1, Math.min(config.eval_config.num_envs, numTraj)) }).pipe(
        Layer.provideMerge(Layer.mergeAll(suite.actionSpace ?? DEFAULT_COMPONENTS.actionSpace, suite.reward ?? DEFAULT_COMPONENTS.reward))
      )
    )
    if (options.logFile !== undefined) writeFileAtomic(options.logFile, lines.join("\n") + "\n")
    if (traces !== undefined) yield* traces.finish
    return metrics
  })
