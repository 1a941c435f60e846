import { Effect, Layer } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { exportSafetensors, LAYOUT } from "../../src/app/export.ts"
import { PRESETS } from "../../src/app/config.ts"
import { environmentLayer, policySettings } from "../../src/app/services.ts"
import { saveCheckpoint } from "../../src/core/checkpoint.ts"
import { Environment } from "../../src/core/environment.ts"
import type { PolicyInput, PolicyService } from "../../src/core/policy.ts"
import * as Safetensors from "../../src/core/safetensors.ts"
import * as Absolute from "../../src/plugins/action-space/absolute.ts"
import { oracleText } from "../../src/plugins/policy/oracle.ts"
import * as Backend from "../../src/plugins/policy/tfjs/backend.ts"
import { parameterSpecs } from "../../src/plugins/policy/tfjs/model.ts"
import { probe } from "../../src/plugins/policy/tfjs/export.ts"
import * as TfPolicy from "../../src/plugins/policy/tfjs/layer.ts"
import { layer as PythonRandomLayer, PythonRandom } from "../../src/plugins/random/python-random.ts"
import * as Process from "../../src/plugins/reward/process.ts"
import { removeCity, tinyCity } from "../support/tiny-city.ts"

const ROOT = path.resolve(import.meta.dirname, "../..")
const BIN = path.join(ROOT, "bin/virl.mjs")

let city = ""
let out = ""
let inputs: PolicyInput[] = []
let policy: PolicyService
const checkpoint = () => path.join(out, "sft", "checkpoint")

beforeAll(async () => {
  out = fs.mkdtempSync(path.join(os.tmpdir(), "virl-export-"))
  city = await tinyCity("nyc", 2)
  inputs = await Effect.runPromise(
    Effect.provide(
      Effect.gen(function*() {
        const env = yield* Environment
        const got: PolicyInput[] = []
        for (const route of [0, 1]) {
          let o = yield* env.reset(0, { routeIndex: route })
          for (let k = 0; k < 4; k++) {
            got.push({ chat: o.chat, image: o.image, info: o.info })
            const [t] = yield* env.step([oracleText(o.info)])
            if (t === null || t.terminated || t.truncated) break
            o = t.observation
          }
        }
        return got
      }),
      environmentLayer(PRESETS.small, city, { numEnvs: 1 }).pipe(Layer.provide(Layer.mergeAll(Absolute.layer, Process.layer, PythonRandomLayer)))
    )
  )
  const { tf } = await Effect.runPromise(Backend.make("cpu"))
  // non-zero biases too, so that a bias loaded into the wrong place shows
  const rng = new PythonRandom(11)
  const config = TfPolicy.policyConfigOf(policySettings(PRESETS.small))
  const values = new Map(
    parameterSpecs(config.model).map((s) => {
      const n = s.shape.reduce((a, b) => a * b, 1)
      return [s.name, Float32Array.from({ length: n }, () => (rng.random() - 0.5) * (s.name === "word_embedding" ? 0.6 : 0.3))]
    })
  )
  policy = TfPolicy.make(tf, config, new PythonRandom(5), values)
  await Effect.runPromise(saveCheckpoint(checkpoint(), {
    policy: { name: policy.name, config: policy.config },
    parameters: policy.learner!.parameters(),
    rng: new PythonRandom(1).snapshot(),
    progress: { phase: "sft", done: 3 },
    meta: {}
  }))
}, 120_000)

afterAll(() => {
  removeCity(city)
  fs.rmSync(out, { recursive: true, force: true })
})

const hasTorch = spawnSync("python3", ["-c", "import torch"], { encoding: "utf8" }).status === 0
if (!hasTorch) console.warn("skipped: the PyTorch comparison needs python3 with torch (not found)")

describe("virl export --format safetensors", () => {
  it("writes every parameter with its name, shape and values, and the policy's config in the metadata", async () => {
    const r = spawnSync(process.execPath, [BIN, "export", checkpoint(), "--format", "safetensors"], { encoding: "utf8" })
    expect(r.stderr).toBe("")
    expect(r.status).toBe(0)
    const file = `${checkpoint()}.safetensors`
    expect(r.stdout).toContain(`wrote ${file}: 22 tensors`)
    const read = Safetensors.read(file)
    const specs = parameterSpecs((policy.config as TfPolicy.TfPolicyConfig).model)
    expect(read.tensors.map((t) => [t.name, t.shape])).toEqual(specs.map((s) => [s.name, s.shape]))
    for (const t of read.tensors) expect(t.data).toEqual(policy.learner!.parameters().get(t.name))
    expect(JSON.parse(read.metadata["policy_config"])).toEqual(policy.config)
    expect(read.metadata).toMatchObject({ format: "virl-policy/1", policy: "tfjs-vl", layout: LAYOUT, phase: "sft", done: "3", checkpoint: "checkpoint" })
    // no path of the machine that made it: a shared file does not carry its maker's folders
    expect(fs.readFileSync(file).includes(Buffer.from(out))).toBe(false)
    // the format's rules: the header's length, then JSON padded to 8 bytes, tensors back to back
    const bytes = fs.readFileSync(file)
    const n = Number(bytes.readBigUInt64LE(0))
    expect(n % 8).toBe(0)
    expect(bytes.length).toBe(8 + n + specs.reduce((sum, s) => sum + 4 * s.shape.reduce((a, b) => a * b, 1), 0))
  }, 60_000)

  it("names the checkpoint when it cannot be read, and the file when a safetensors file is damaged", async () => {
    const broken = path.join(out, "broken")
    fs.cpSync(checkpoint(), broken, { recursive: true })
    fs.truncateSync(path.join(broken, "weights.bin"), 100)
    const failure = await Effect.runPromise(Effect.flip(exportSafetensors(broken, path.join(out, "broken.safetensors"))))
    expect(String(failure)).toContain(broken)
    expect(String(failure)).toMatch(/weights\.bin holds 100 bytes/)
    expect(fs.existsSync(path.join(out, "broken.safetensors"))).toBe(false)

    const good = fs.readFileSync(`${checkpoint()}.safetensors`)
    const damaged = Buffer.from(good)
    damaged.writeBigUInt64LE(BigInt(good.length), 0)
    expect(() => Safetensors.decode(damaged)).toThrow(/runs past the end of the file/)
    expect(() => Safetensors.decode(good.subarray(0, good.length - 4))).toThrow(/the tensors cover \d+ bytes of data, the file holds \d+/)
  })

  it.skipIf(!hasTorch)("bench/torch_load.py puts the weights into the PyTorch model, which gives the same probabilities", async () => {
    await Effect.runPromise(exportSafetensors(checkpoint(), path.join(out, "model.safetensors")))
    const probeFile = path.join(out, "probe.json")
    fs.writeFileSync(probeFile, JSON.stringify(await Effect.runPromise(probe(policy, inputs))))
    const r = spawnSync("python3", [path.join(ROOT, "bench/torch_load.py"), path.join(out, "model.safetensors"), "--check", probeFile], { encoding: "utf8" })
    expect(r.status, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ inputs: inputs.length, ok: true })
  }, 60_000)
})
