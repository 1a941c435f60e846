import { Effect, Schema } from "effect"
import type { StepInfoRecord, VectorEnvironment } from "./environment.ts"
import { EpisodeSlots } from "./episodes.ts"
import type { OptimizerService } from "./optimizer.ts"
import { type Learner, PolicyError, type PolicyService, type Sample } from "./policy.ts"
import type { Rng } from "./random.ts"

export const SftConfig = Schema.Struct({
  epochs: Schema.Number,
  batch_size: Schema.Number,
  /** Expert episodes per training route. */
  passes: Schema.Number
})
export type SftConfig = typeof SftConfig.Type

/**
 * Expert trajectories through the same environment and prompt builder a policy trains in: each
 * step's input paired with the expert's answer, as the learner's own teacher-forced sample.
 * Routes 0..routes−1 in order, `passes` times each; N slots in lock-step.
 */
export const collectDemonstrations = (
  env: VectorEnvironment<StepInfoRecord>,
  expert: PolicyService,
  learner: Learner,
  options: {
    readonly routes: number
    readonly passes: number
    readonly onEpisode?: (done: number, total: number) => void
    /** What the learner is taught to write for the expert's answer (default: the answer itself); the environment still gets the expert's. */
    readonly written?: (text: string) => string
  }
) =>
  Effect.gen(function*() {
    const total = options.routes * options.passes
    const samples: Sample[] = []
    let done = 0
    const slots = new EpisodeSlots(env, { episodes: total, route: (episode) => ({ routeIndex: episode % options.routes }) })
    yield* slots.fill()
    while (slots.busy) {
      yield* slots.step(
        (inputs) =>
          Effect.flatMap(expert.act(inputs, { temperature: 1, greedy: true }), (outputs) =>
            Effect.gen(function*() {
              // the learner's teacher-forced sample of each answer, in slot order
              for (const [k, output] of outputs.entries()) {
                const text = options.written === undefined ? output.text : options.written(output.text)
                const sample = learner.teacher(inputs[k]!, text)
                if (sample === undefined) return yield* new PolicyError({ message: `the learner cannot write the expert's answer ${text}` })
                samples.push(sample)
              }
              return outputs
            })),
        (o) => o.text,
        ({ transition }) => Effect.sync(() => (transition.terminated || transition.truncated ? options.onEpisode?.(++done, total) : undefined))
      )
    }
    return samples
  })

export interface SftEpochStats {
  readonly epoch: number
  /** Mean negative log-likelihood of the expert's output (all of it, weight 1). */
  readonly loss: number
  readonly learningRate: number
}

/** Cross-entropy on the expert outputs: `epochs` shuffled passes of `batch_size` samples. */
export const sftTrain = (
  learner: Learner,
  optimizer: OptimizerService,
  samples: ReadonlyArray<Sample>,
  config: SftConfig,
  rng: Rng,
  options: { readonly temperature: number; readonly onBatch?: (done: number, total: number) => void; readonly onEpoch?: (stats: SftEpochStats) => void } = {
    temperature: 1
  }
) =>
  Effect.gen(function*() {
    const parameters = learner.parameters()
    const batches = Math.ceil(samples.length / config.batch_size)
    const history: SftEpochStats[] = []
    let done = 0
    for (let epoch = 0; epoch < config.epochs; epoch++) {
      const order = Array.from({ length: samples.length }, (_, i) => i)
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.randint(0, i)
        ;[order[i], order[j]] = [order[j], order[i]]
      }
      let lossSum = 0
      let lr = 0
      for (let b = 0; b < batches; b++) {
        const idx = order.slice(b * config.batch_size, (b + 1) * config.batch_size)
        const { gradients, evaluation } = yield* learner.gradients(
          idx.map((i) => samples[i]),
          { thoughtWeight: 1, temperature: options.temperature },
          (ev) => ({ logProb: ev.logProbs.map(() => -1 / idx.length), value: ev.values.map(() => 0), entropy: ev.entropies.map(() => 0) })
        )
        lossSum -= evaluation.logProbs.reduce((s, x) => s + x, 0)
        const step = optimizer.accumulate(parameters, gradients)
        if (step !== undefined) {
          learner.commit()
          lr = step.learningRate
        }
        options.onBatch?.(++done, batches * config.epochs)
      }
      const last = optimizer.flush(parameters)
      if (last !== undefined) {
        learner.commit()
        lr = last.learningRate
      }
      const stats = { epoch: epoch + 1, loss: lossSum / samples.length, learningRate: lr }
      history.push(stats)
      options.onEpoch?.(stats)
    }
    return history
  })
