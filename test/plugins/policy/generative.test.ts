import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { plainSentences } from "../../../src/app/base-model.ts"
import type { PolicyInput, PolicyService, Sample } from "../../../src/core/policy.ts"
import { NOT_FOUND, parseOutput } from "../../../src/domain/virl/output-parsing.ts"
import { verify } from "../../../src/domain/virl/verifier.ts"
import type { GenerativeConfig } from "../../../src/plugins/policy/generative/config.ts"
import { make } from "../../../src/plugins/policy/generative/policy.ts"
import { defaultVocabulary, EOS, makeTokenizer, pieces } from "../../../src/plugins/policy/generative/tokenizer.ts"
import { oracleText } from "../../../src/plugins/policy/oracle.ts"
import * as Backend from "../../../src/plugins/policy/tfjs/backend.ts"
import { PythonRandom } from "../../../src/plugins/random/python-random.ts"
import { oracleSteps } from "../../support/oracle-steps.ts"
import { removeCity, tinyCity } from "../../support/tiny-city.ts"

let dir = ""
let inputs: PolicyInput[] = []
beforeAll(async () => {
  dir = await tinyCity("nyc", 3)
  inputs = await oracleSteps(dir, 6)
})
afterAll(() => removeCity(dir))

const TINY: GenerativeConfig = {
  architecture: { width: 32, heads: 2, encoder_layers: 1, decoder_layers: 1, prompt_tokens: 96, answer_tokens: 64, image_side: 16, patch: 8, copy: true },
  vocabulary: defaultVocabulary(),
  thought_prob_coef: 0.5
}

const build = async (backend: "wasm" | "cpu", seed = 5, config: GenerativeConfig = TINY) => {
  const { tf } = await Effect.runPromise(Backend.make(backend))
  return make(tf, config, new PythonRandom(seed))
}

/** Adam steps on the mean negative log-likelihood of the samples' answers. */
const fit = async (policy: PolicyService, samples: ReadonlyArray<Sample>, steps: number, lr: number) => {
  const learner = policy.learner!
  const m = new Map([...learner.parameters()].map(([name, p]) => [name, new Float32Array(p.length)]))
  const v = new Map([...learner.parameters()].map(([name, p]) => [name, new Float32Array(p.length)]))
  for (let step = 1; step <= steps; step++) {
    const { gradients } = await Effect.runPromise(
      learner.gradients(samples, { thoughtWeight: 1, temperature: 1 }, (ev) => ({
        logProb: ev.logProbs.map(() => -1 / samples.length),
        value: ev.values.map(() => 0),
        entropy: ev.entropies.map(() => 0)
      }))
    )
    for (const [name, p] of learner.parameters()) {
      const g = gradients.get(name)!
      const mm = m.get(name)!
      const vv = v.get(name)!
      for (let i = 0; i < p.length; i++) {
        mm[i] = 0.9 * mm[i]! + 0.1 * g[i]!
        vv[i] = 0.999 * vv[i]! + 0.001 * g[i]! * g[i]!
        p[i] -= (lr * (mm[i]! / (1 - 0.9 ** step))) / (Math.sqrt(vv[i]! / (1 - 0.999 ** step)) + 1e-8)
      }
    }
    learner.commit()
  }
}

describe("a base's answers in plain sentences (pretrain_config.answer_format: sentences)", () => {
  it("say the observation, instruction and action without the format: the parser finds no action", () => {
    for (const input of inputs) {
      const json = oracleText(input.info)
      const plain = plainSentences(json)
      expect(plain).toMatch(/^I see .*\. I follow: .* So I (go forward|stop here|turn (north|northeast|east|southeast|south|southwest|west|northwest))\.$/)
      expect(plain).toContain(String(input.info["current_instruction"] ?? "").trim())
      expect(parseOutput(plain).action).toBe(NOT_FOUND)
    }
  })
})

describe("the generative policy's tokenizer", () => {
  const tokenizer = makeTokenizer(defaultVocabulary())
  it("round-trips any text exactly: task words as one token, anything else spelled out", () => {
    for (const text of [...inputs.map((i) => oracleText(i.info)), '{"action": "turn_direction(north)"}  \n', "Zyzzyva's Deli, 5th Ave.  ", "  "]) {
      expect(tokenizer.decode(tokenizer.encode(text))).toBe(text)
      expect(pieces(text).join("")).toBe(text)
    }
    const answer = oracleText(inputs[0]!.info)
    // the answer's words are in the vocabulary: far fewer tokens than characters
    expect(tokenizer.encode(answer).length).toBeLessThan(answer.length / 2.5)
    expect(tokenizer.encode(" forward")).toHaveLength(1)
    expect(tokenizer.decode(tokenizer.encode("naïve"))).toBe("na\uFFFDve")
  })
  it("knows each token's bare form, which the copy head may write where the prompt has the word after a space", () => {
    const [spaced, bare] = [tokenizer.encode(" northeast"), tokenizer.encode("northeast")]
    expect(spaced).toHaveLength(1)
    expect(tokenizer.bare[spaced[0]!]).toBe(bare[0])
    expect(tokenizer.bare[tokenizer.encode("\nnortheast")[0]!]).toBe(bare[0])
    expect(tokenizer.bare[bare[0]!]).toBe(bare[0])
    expect(tokenizer.bare[tokenizer.encode("(")[0]!]).toBe(tokenizer.encode("(")[0])
  })
})

describe("the generative policy", () => {
  it("gives its tensors back when released", async () => {
    const { tf } = await Effect.runPromise(Backend.make("wasm"))
    const empty = tf.memory().numTensors
    const policy = make(tf, TINY, new PythonRandom(5))
    await Effect.runPromise(policy.act(inputs.slice(0, 2), { temperature: 1, greedy: false }))
    expect(tf.memory().numTensors).toBeGreaterThan(empty)
    policy.release!()
    expect(tf.memory().numTensors).toBe(empty)
  })

  it("writes text the environment parses and verifies as it is, with its log-probability and value", async () => {
    const policy = await build("wasm")
    const outputs = await Effect.runPromise(policy.act(inputs, { temperature: 1, greedy: false }))
    for (const [i, out] of outputs.entries()) {
      expect(typeof out.text).toBe("string")
      expect(out.logProb).toBeLessThan(0)
      expect(Number.isFinite(out.value)).toBe(true)
      // an untrained generator writes anything: the verifier still gives a verdict
      expect(verify(out.text, String(inputs[i]!.info["gt_action"]), String(inputs[i]!.info["current_obs"]))._tag).toMatch(/Correct|Wrong/)
    }
    // greedy decoding is deterministic
    const a = await Effect.runPromise(policy.act(inputs, { temperature: 1, greedy: true }))
    const b = await Effect.runPromise(policy.act(inputs, { temperature: 1, greedy: true }))
    expect(a.map((o) => o.text)).toEqual(b.map((o) => o.text))
  })

  it("refuses an architecture it cannot build, naming the keys", async () => {
    const { tf } = await Effect.runPromise(Backend.make("wasm"))
    expect(() => make(tf, { ...TINY, architecture: { ...TINY.architecture, width: 30, heads: 4 } }, new PythonRandom(1))).toThrow(
      "policy_config.width (30) must be a multiple of policy_config.heads (4)"
    )
    expect(() => make(tf, { ...TINY, architecture: { ...TINY.architecture, image_side: 20 } }, new PythonRandom(1))).toThrow(/policy_config\.image_side \(20\)/)
    // a checkpoint's weights of another shape
    const other = make(tf, TINY, new PythonRandom(1)).learner!.parameters()
    expect(() => make(tf, { ...TINY, architecture: { ...TINY.architecture, width: 64 } }, new PythonRandom(1), other)).toThrow(
      /parameter token_embedding: expected/
    )
  })

  it("scores a text the same when it writes it and when the learner replays it (thought tokens weighted)", async () => {
    const policy = await build("wasm")
    const outputs = await Effect.runPromise(policy.act(inputs, { temperature: 0.7, greedy: false }))
    const { evaluation } = await Effect.runPromise(
      policy.learner!.gradients(outputs.map((o) => o.sample!), { thoughtWeight: 0.5, temperature: 0.7 }, (ev) => ({
        logProb: ev.logProbs.map(() => 0),
        value: ev.values.map(() => 0),
        entropy: ev.entropies.map(() => 0)
      }))
    )
    for (const [k, out] of outputs.entries()) {
      expect(evaluation.logProbs[k]).toBeCloseTo(out.logProb, 3)
      expect(evaluation.values[k]).toBeCloseTo(out.value, 4)
    }
  })

  it("computes the same gradients on wasm as on the pure-JS cpu backend", async () => {
    const grads = async (backend: "wasm" | "cpu") => {
      const policy = await build(backend)
      const samples = inputs.map((i) => policy.learner!.teacher(i, oracleText(i.info))!)
      return Effect.runPromise(
        policy.learner!.gradients(samples, { thoughtWeight: 0.5, temperature: 1 }, (ev) => ({
          logProb: ev.logProbs.map((_, k) => (k % 2 === 0 ? -1 : 0.5)),
          value: ev.values.map(() => 0.3),
          entropy: ev.entropies.map(() => -0.01)
        }))
      )
    }
    const wasm = await grads("wasm")
    const cpu = await grads("cpu")
    for (let k = 0; k < wasm.evaluation.logProbs.length; k++) expect(wasm.evaluation.logProbs[k]).toBeCloseTo(cpu.evaluation.logProbs[k]!, 3)
    let checked = 0
    for (const [name, g] of wasm.gradients) {
      const c = cpu.gradients.get(name)!
      const scale = c.reduce((m, x) => Math.max(m, Math.abs(x)), 1e-3)
      for (let i = 0; i < g.length; i++) expect(Math.abs(g[i]! - c[i]!) / scale).toBeLessThan(3e-3)
      if (c.some((x) => x !== 0)) checked++
    }
    expect(checked).toBeGreaterThan(20)
  })

  it("trains a large batch in micro-batches: the gradient of 24 answers is the sum over its two halves", async () => {
    const policy = await build("wasm")
    const many = [...inputs, ...inputs, ...inputs, ...inputs].map((i, k) =>
      policy.learner!.teacher(i, k % 2 === 0 ? oracleText(i.info) : '{"action": "stop()"}')!
    )
    const coefficient = (k: number) => (k % 3 === 0 ? -0.7 : 0.4)
    const run = (samples: typeof many, offset: number) =>
      Effect.runPromise(
        policy.learner!.gradients(samples, { thoughtWeight: 0.5, temperature: 1 }, (ev) => ({
          logProb: ev.logProbs.map((_, k) => coefficient(k + offset)),
          value: ev.values.map(() => 0.2),
          entropy: ev.entropies.map(() => 0)
        }))
      )
    const whole = await run(many, 0)
    const first = await run(many.slice(0, 12), 0)
    const second = await run(many.slice(12), 12)
    expect(whole.evaluation.logProbs).toHaveLength(24)
    for (const [name, g] of whole.gradients) {
      const a = first.gradients.get(name)!
      const b = second.gradients.get(name)!
      const scale = g.reduce((m, x) => Math.max(m, Math.abs(x)), 1e-3)
      for (let i = 0; i < g.length; i++) expect(Math.abs(g[i]! - a[i]! - b[i]!) / scale).toBeLessThan(1e-3)
    }
  })

  it("learns to write the oracle's answers by teacher forcing, and its distributions replay another policy's answer", async () => {
    const policy = await build("wasm")
    const learner = policy.learner!
    const samples = inputs.map((i) => learner.teacher(i, oracleText(i.info))!)
    const nll = async () => {
      const { evaluation } = await Effect.runPromise(
        learner.gradients(samples, { thoughtWeight: 1, temperature: 1 }, (ev) => ({
          logProb: ev.logProbs.map(() => 0),
          value: ev.values.map(() => 0),
          entropy: ev.entropies.map(() => 0)
        }))
      )
      return -evaluation.logProbs.reduce((a, b) => a + b, 0) / samples.length
    }
    const before = await nll()
    await fit(policy, samples, 120, 0.01)
    const after = await nll()
    expect(after).toBeLessThan(before * 0.5)
    // greedy answers now parse and name an action of the action space
    const outputs = await Effect.runPromise(policy.act(inputs, { temperature: 1, greedy: true }))
    const parsed = outputs.filter((o) => parseOutput(o.text).action !== NOT_FOUND)
    expect(parsed.length).toBe(inputs.length)
    expect(outputs.filter((o, k) => verify(o.text, String(inputs[k]!.info["gt_action"]), String(inputs[k]!.info["current_obs"]))._tag === "Correct").length)
      .toBeGreaterThanOrEqual(inputs.length - 1)

    // replayed along another policy's answers, the parts line up token by token
    const other = await build("wasm", 9)
    const reference = await Effect.runPromise(other.distributions!(inputs, { temperature: 1 }))
    const mine = await Effect.runPromise(policy.distributions!(inputs, { temperature: 1, along: reference.map((r) => r.along!) }))
    for (const [k, r] of reference.entries()) {
      expect(Object.keys(mine[k]!.parts)).toEqual(Object.keys(r.parts))
      expect(mine[k]!.along).toBe(r.along)
      const tokens = makeTokenizer(TINY.vocabulary).encode(r.along!)
      expect(Object.keys(r.parts).length).toBe(Math.min(tokens.length + 1, TINY.architecture.answer_tokens))
    }
    expect(EOS).toBe(2)
  }, 120_000)

  it("with the copy head, writes back a word it never wrote in training; without it, does not", async () => {
    // "Go <direction>." → turn_direction(<direction>): trained on six directions, asked about the other two
    const directions = ["north", "northeast", "east", "southeast", "south", "southwest", "west", "northwest"]
    const ask = (direction: string): PolicyInput => ({
      chat: [{ role: "user", content: [{ type: "text", text: `Go ${direction}.` }] }],
      image: null,
      info: {}
    })
    const unseen = ["east", "northwest"]
    const written: Record<string, string[]> = {}
    for (const copy of [true, false]) {
      const config = { ...TINY, architecture: { ...TINY.architecture, encoder_layers: 0, prompt_tokens: 8, answer_tokens: 12, copy } }
      const policy = await build("wasm", 3, config)
      const samples = directions.filter((d) => !unseen.includes(d)).map((d) => policy.learner!.teacher(ask(d), `turn_direction(${d})`)!)
      await fit(policy, samples, 150, 0.01)
      const outputs = await Effect.runPromise(policy.act(unseen.map(ask), { temperature: 1, greedy: true }))
      written[String(copy)] = outputs.map((o) => o.text)
    }
    expect(written["true"]).toEqual(unseen.map((d) => `turn_direction(${d})`))
    for (const [k, d] of unseen.entries()) expect(written["false"]![k]).not.toBe(`turn_direction(${d})`)
  }, 120_000)
})
