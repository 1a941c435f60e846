/**
 * `npm run bench` (third part): training throughput of the small tfjs policy per tensor
 * backend — SFT gradient steps (batch 32) and batched action selection (batch 8), in samples
 * per second — with the pure-JS cpu backend as the baseline run side by side.
 */
import { Effect } from "effect"
import * as os from "node:os"
import { PRESETS } from "../src/app/config.ts"
import { policySettings } from "../src/app/services.ts"
import { oracleText } from "../src/plugins/policy/oracle.ts"
import * as Backend from "../src/plugins/policy/tfjs/backend.ts"
import * as TfPolicy from "../src/plugins/policy/tfjs/layer.ts"
import { PythonRandom } from "../src/plugins/random/python-random.ts"
import { oracleInputs } from "./inputs.ts"

const main = async () => {
  const inputs = await oracleInputs(4, 8)
  console.log(`small tfjs policy — ${os.cpus().length} cores, Node ${process.version}`)
  const rates: Record<string, { train: number; act: number }> = {}
  for (const name of ["cpu", "wasm"] as const) {
    const { tf, name: actual } = await Effect.runPromise(Backend.make(name))
    const policy = TfPolicy.make(tf, TfPolicy.policyConfigOf(policySettings(PRESETS.small)), new PythonRandom(1))
    const samples = inputs.map((i) => policy.learner!.teacher(i, oracleText(i.info))!)
    const batch = Array.from({ length: 32 }, (_, k) => samples[k % samples.length])
    const step = () =>
      Effect.runPromise(
        policy.learner!.gradients(batch, { thoughtWeight: 1, temperature: 1 }, (ev) => ({
          logProb: ev.logProbs.map(() => -1 / 32),
          value: ev.values.map(() => 0),
          entropy: ev.entropies.map(() => 0)
        }))
      )
    await step()
    const reps = name === "cpu" ? 3 : 10
    let t = performance.now()
    for (let i = 0; i < reps; i++) await step()
    const train = (32 * reps) / ((performance.now() - t) / 1000)
    const acting = Array.from({ length: 8 }, (_, k) => inputs[k % inputs.length])
    await Effect.runPromise(policy.act(acting, { temperature: 1, greedy: false }))
    t = performance.now()
    for (let i = 0; i < reps; i++) await Effect.runPromise(policy.act(acting, { temperature: 1, greedy: false }))
    const act = (8 * reps) / ((performance.now() - t) / 1000)
    rates[name] = { train, act }
    console.log(`  ${actual.padEnd(5)} train ${train.toFixed(0).padStart(5)} samples/s   act ${act.toFixed(0).padStart(5)} samples/s`)
  }
  console.log(`  wasm / cpu: train ${(rates.wasm.train / rates.cpu.train).toFixed(1)}×, act ${(rates.wasm.act / rates.cpu.act).toFixed(1)}×`)
}

main().catch((e) => {
  console.error(e)
  process.exitCode = 1
})
