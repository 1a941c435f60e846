import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Environment } from "../../src/core/environment.ts"
import { runSuite } from "../../src/core/evaluation.ts"
import { Optimizer } from "../../src/core/optimizer.ts"
import { Policy, type PolicySettings } from "../../src/core/policy.ts"
import { type PpoConfig, ppoUpdate } from "../../src/core/ppo.ts"
import { RolloutCollector } from "../../src/core/rollout.ts"
import * as AdamW from "../../src/plugins/optimizer/adamw.ts"
import { PythonRandom } from "../../src/plugins/random/python-random.ts"
import { corridorLayer, scriptedPolicy, tablePolicyLayer } from "../support/fakes.ts"

/** The algorithms of core, run against test layers: a corridor environment and a table policy. */
const settings: PolicySettings = { policy_config: {}, thought_prob_coef: 1, backend: "cpu" }
const TestLayers = Layer.mergeAll(corridorLayer(4), tablePolicyLayer, AdamW.layer)

const ppo: PpoConfig = {
  num_steps: 32,
  num_updates: 1,
  ppo_epoch: 4,
  mini_batch_size: 8,
  clip_param: 0.2,
  value_loss_coef: 0.5,
  entropy_coef: 0,
  entropy_bonus: false,
  max_grad_norm: 1,
  gamma: 0.9,
  gae_lambda: 0.95,
  use_proper_time_limits: false,
  thought_prob_coef: 1,
  temperature: 1,
  save_every: 1
}

const evaluate = Effect.gen(function*() {
  const env = yield* Environment
  const policy = yield* (yield* Policy).make(settings, new PythonRandom(1))
  return yield* runSuite(env, policy, { numTraj: 8, order: false, act: { temperature: 1, greedy: true } })
})

describe("core algorithms over test layers", () => {
  it.effect("collects rollouts across episode boundaries, one policy call a step for every environment", () =>
    Effect.gen(function*() {
      const env = yield* Environment
      const policy = yield* (yield* Policy).make(settings, new PythonRandom(2))
      const collector = new RolloutCollector(env, policy, { properTimeLimits: false, act: { temperature: 1, greedy: false } })
      const first = yield* collector.collect(32)
      expect(first.samples).toHaveLength(32)
      expect(first.segments.map((s) => s.end - s.start)).toEqual([8, 8, 8, 8])
      // every ended episode is a mask 0 (terminated) or, without proper time limits, a truncation kept at 1
      const terminated = first.episodes.filter((e) => e.success).length
      expect(first.masks.filter((m) => m === 0)).toHaveLength(terminated)
      expect(first.episodes.reduce((s, e) => s + e.steps, 0)).toBeLessThanOrEqual(32)
      // the next rollout continues the episodes in flight
      const state = collector.state()
      expect(state.started).toBe(true)
      const second = yield* collector.collect(32)
      expect(second.samples).toHaveLength(32)
    }).pipe(Effect.provide(TestLayers)))

  it.effect("evaluates: the right answers score 1, a policy that never stops never succeeds", () =>
    Effect.gen(function*() {
      const env = yield* Environment
      const right = yield* runSuite(env, scriptedPolicy((i) => String(i.info["gt_action"])), {
        numTraj: 6,
        order: false,
        act: { temperature: 1, greedy: true }
      })
      expect(right.per_step_accuracy).toBe(1)
      expect(right.success_rate).toBe(1)
      expect(right.mean_steps).toBe(3)
      const never = yield* runSuite(env, scriptedPolicy(() => "forward()"), { numTraj: 6, order: false, act: { temperature: 1, greedy: true } })
      expect(never.success_rate).toBe(0)
      expect(never.per_step_accuracy).toBeCloseTo(2 / 5)
      // each episode's answers, correct answers and success, which the metrics add up to
      expect(right.episodes).toEqual(Array.from({ length: 6 }, () => [3, 3, 1]))
      const sum = (k: 0 | 1 | 2) => never.episodes.reduce((s, e) => s + e[k], 0)
      expect(never.episodes).toHaveLength(6)
      expect(sum(1) / sum(0)).toBeCloseTo(never.per_step_accuracy)
      expect(sum(0) / 6).toBeCloseTo(never.mean_steps)
      expect(sum(2)).toBe(0)
    }).pipe(Effect.provide(corridorLayer(3))))

  it.effect("PPO with the context's optimizer teaches the table policy the corridor", () =>
    Effect.gen(function*() {
      const before = yield* evaluate
      expect(before.success_rate).toBe(0)
      const env = yield* Environment
      const rng = new PythonRandom(3)
      const policy = yield* (yield* Policy).make(settings, rng)
      const optimizer = (yield* Optimizer).make({
        init_lr: 0.05,
        end_lr: 0.05,
        lr_max_steps: 100,
        eps: 1e-8,
        beta1: 0.9,
        beta2: 0.999,
        weight_decay: 0,
        max_grad_norm: 1,
        grad_accum_steps: 1
      })
      const collector = new RolloutCollector(env, policy, { properTimeLimits: false, act: { temperature: 1, greedy: false } })
      const rewards: number[] = []
      for (let update = 0; update < 15; update++) {
        const rollout = yield* collector.collect(ppo.num_steps)
        rewards.push(rollout.rewards.reduce((s, r) => s + r, 0) / rollout.rewards.length)
        yield* ppoUpdate(ppo, rollout, policy.learner!, optimizer, rng)
      }
      expect(rewards.at(-1)!).toBeGreaterThan(rewards[0]! + 0.5)
      const greedy = yield* runSuite(env, policy, { numTraj: 8, order: false, act: { temperature: 1, greedy: true } })
      expect(greedy.success_rate).toBe(1)
    }).pipe(Effect.provide(TestLayers)))
})
