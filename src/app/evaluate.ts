import { Effect } from "effect"
import * as path from "node:path"
import { loadCheckpoint } from "../core/checkpoint.ts"
import { Environment } from "../core/environment.ts"
import { writeFileAtomic } from "../core/files.ts"
import { runSuite, type SuiteMetrics } from "../core/evaluation.ts"
import type { PolicyService } from "../core/policy.ts"
import { readRoutes, ROUTES_FILE } from "../plugins/dataset/virl-routes.ts"
import { oracle } from "../plugins/policy/oracle.ts"
import * as OpenAi from "../plugins/policy/openai.ts"
import { defaultOpenAiOptions } from "../plugins/policy/openai.ts"
import * as RandomPolicy from "../plugins/policy/random.ts"
import { PythonRandom } from "../plugins/random/python-random.ts"
import type { RunConfig } from "./config.ts"
import type { DefaultDatasets } from "../plugins/dataset/synth/default.ts"
import { environmentLayer, type ActionRules } from "./layers.ts"
import { traceWriter } from "./traces.ts"
import { buildPolicy } from "./train.ts"

export const SUITES = ["indist", "rule-ood", "visual-ood"] as const
export type SuiteName = (typeof SUITES)[number]

/** The paper's three settings: NYC absolute, NYC relative (rule-OOD), SF absolute (visual-OOD). */
export const suiteSetup = (suite: SuiteName, config: RunConfig, datasets: DefaultDatasets, data?: string): { dir: string; rules: ActionRules; numTraj: number } => {
  switch (suite) {
    case "indist":
      return { dir: data ?? datasets.eval, rules: "absolute", numTraj: config.eval_config.num_traj }
    case "rule-ood":
      return { dir: data ?? datasets.eval, rules: "relative", numTraj: config.eval_config.num_traj }
    case "visual-ood":
      return { dir: data ?? datasets.visualOod, rules: "absolute", numTraj: config.eval_config.num_traj_visual }
  }
}

/** `oracle`, `random`, `openai:MODEL` (endpoint: `endpoint` or OPENAI_BASE_URL), or a checkpoint folder. */
export const loadPolicy = (spec: string, config: RunConfig, endpoint?: string) =>
  Effect.gen(function* () {
    if (spec === "oracle") return oracle as PolicyService
    if (spec === "random") return RandomPolicy.make(new PythonRandom(config.seed))
    if (spec.startsWith("openai:")) return OpenAi.make(defaultOpenAiOptions(spec.slice("openai:".length), endpoint))
    const checkpoint = yield* loadCheckpoint(spec)
    const { policy } = yield* buildPolicy(config, new PythonRandom(config.seed), { checkpoint, path: spec })
    return policy
  })

export const evaluateSuite = (
  config: RunConfig,
  policy: PolicyService,
  suite: SuiteName,
  datasets: DefaultDatasets,
  options: {
    readonly data?: string
    readonly logFile?: string
    /** Episode traces for `virl view` (see traces.ts): the file, the run folder for frames, and whether to save frames. */
    readonly traces?: { readonly file: string; readonly runDir: string; readonly frames: boolean }
    readonly onEpisode?: (done: number, total: number) => void
  } = {}
): Effect.Effect<SuiteMetrics, unknown> =>
  Effect.gen(function* () {
    const setup = suiteSetup(suite, config, datasets, options.data)
    const lines: string[] = []
    const traces = options.traces === undefined ? undefined : traceWriter(options.traces.file, options.traces.runDir, options.traces.frames)
    const routes = (yield* readRoutes(path.join(setup.dir, ROUTES_FILE))).length
    const numTraj = config.eval_config.order ? Math.min(setup.numTraj, routes) : setup.numTraj
    const metrics = yield* Effect.provide(
      Effect.flatMap(Environment, (env) =>
        runSuite(env, policy, {
          numTraj,
          order: config.eval_config.order,
          act: { temperature: config.generation_config.temperature, greedy: config.eval_config.greedy },
          ...(options.logFile === undefined ? {} : { log: (line: unknown) => lines.push(JSON.stringify(line)) }),
          ...(options.onEpisode === undefined ? {} : { onEpisode: options.onEpisode }),
          ...(traces === undefined ? {} : { record: traces.record })
        })
      ),
      environmentLayer(config, setup.dir, setup.rules, { seed: config.eval_config.seed })
    )
    if (options.logFile !== undefined) writeFileAtomic(options.logFile, lines.join("\n") + "\n")
    if (traces !== undefined) yield* traces.finish
    return metrics
  })
