import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { readEvals } from "../../src/app/run-folder.ts"
import { childProcesses, expectSameRuns, running } from "../support/processes.ts"
import { tinyDatasets } from "../support/tiny-city.ts"

const BIN = path.resolve(import.meta.dirname, "../../bin/virl.mjs")
const root = fs.mkdtempSync(path.join(os.tmpdir(), "virl-seeds-"))
const env = { ...process.env, VIRL_DATASETS: path.join(root, "datasets") }
const file = path.join(root, "tiny.ts")

/** `virl ARGS…` to its end: exit code and stderr. */
const virl = (...args: string[]) => virlWith({}, ...args)
const virlWith = (extra: Record<string, string>, ...args: string[]) =>
  new Promise<{ status: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...env, ...extra }, stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += String(d)))
    child.on("exit", (status) => resolve({ status, stderr }))
  })

beforeAll(async () => {
  await tinyDatasets(env.VIRL_DATASETS)
  const core = pathToFileURL(path.resolve(import.meta.dirname, "../../src/core/experiment.ts")).href
  fs.writeFileSync(
    file,
    `import { experiment } from ${JSON.stringify(core)}
export default experiment({
  name: "tiny", seeds: [1, 2], suites: ["indist", "rule-ood", "visual-ood"], evaluations: 2, klReference: "sft",
  arms: [{ name: "sft", recipe: { kind: "sft" } }, { name: "rl", recipe: { kind: "ppo", from: "sft" } }, { name: "rft", recipe: { kind: "rft", from: "sft", samples: "sft" } }],
  config: { "kl_config.routes": 2, "sft_config.routes": 3, "sft_config.epochs": 2, num_steps: 16, num_updates: 1, num_processes: 2, "eval_config.num_traj": 2, "eval_config.num_traj_visual": 2 }
})
`
  )
})
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

describe("virl run --parallel-seeds", () => {
  // the reference: the same experiment with its seeds one after another
  const sequential = path.join(root, "sequential")
  beforeAll(async () => {
    expect((await virl("run", file, "--out", sequential, "--parallel-seeds", "1")).status).toBe(0)
  }, 300_000)

  it("runs each seed in a process of its own to the same evaluations, KL, weights and config as one after another", async () => {
    const two = path.join(root, "parallel")
    const parallel = await virl("run", file, "--out", two, "--parallel-seeds", "2")
    expect(parallel.status).toBe(0)
    expect(parallel.stderr).toMatch(/seeds 1, 2: 2 processes side by side/)
    for (const seed of [1, 2]) expect(fs.readFileSync(path.join(two, `seed-${seed}`, "run.log"), "utf8")).toMatch(new RegExp(`seed ${seed}, arm rft`))
    expectSameRuns(sequential, two, [1, 2], ["sft", "rl", "rft"])
    expect(readEvals(path.join(two, "evals.jsonl"))).toHaveLength(2 * 4 * 3)
    expect(fs.readFileSync(path.join(two, "results.md"), "utf8")).toBe(fs.readFileSync(path.join(sequential, "results.md"), "utf8"))
  }, 300_000)

  it("a parent killed without a word takes its seed processes with it; the same command resumes to the same results", async () => {
    const dir = path.join(root, "killed")
    const parent = spawn(process.execPath, [BIN, "run", file, "--out", dir, "--parallel-seeds", "2"], { env, stdio: "ignore" })
    // wait until both seeds have trained their first arm in processes of their own
    let kids: number[] = []
    const trained = () => [1, 2].every((seed) => fs.existsSync(path.join(dir, `seed-${seed}`, "sft", "checkpoint")))
    for (let i = 0; i < 1200 && !(kids.length === 2 && trained()); i++) {
      await new Promise((r) => setTimeout(r, 50))
      if (kids.length < 2) kids = childProcesses(parent.pid, "--only-seed")
    }
    expect(kids.length).toBe(2)
    const exited = new Promise<void>((resolve) => parent.on("exit", () => resolve()))
    parent.kill("SIGKILL")
    await exited
    for (let i = 0; i < 200 && running(kids).length > 0; i++) await new Promise((r) => setTimeout(r, 50))
    expect(running(kids)).toEqual([])
    const resumed = await virl("run", file, "--out", dir, "--parallel-seeds", "2")
    expect(resumed.status).toBe(0)
    // each seed's log, appended to: the first process's lines, then the resumed one's, which starts after a saved epoch
    for (const seed of [1, 2]) expect(fs.readFileSync(path.join(dir, `seed-${seed}`, "run.log"), "utf8")).toMatch(/sft: .*epochs 2\.\.2|sft already finished/)
    expectSameRuns(sequential, dir, [1, 2], ["sft", "rl", "rft"])
  }, 300_000)

  it("a seed that fails is reported with the end of its log; the other seeds run to their end", async () => {
    const dir = path.join(root, "one-fails")
    fs.cpSync(sequential, dir, { recursive: true })
    // seed 1 has its rft arm to do again; seed 2's rl checkpoint is damaged
    fs.rmSync(path.join(dir, "seed-1", "rft"), { recursive: true })
    for (const f of ["evals.jsonl", "kl.jsonl"]) {
      const kept = fs.readFileSync(path.join(dir, f), "utf8").split("\n").filter((l) => !(l.includes('"seed":1') && l.includes('"arm":"rft"')))
      fs.writeFileSync(path.join(dir, f), kept.join("\n"))
    }
    const weights = path.join(dir, "seed-2", "rl", "checkpoint", "weights.bin")
    fs.truncateSync(weights, 100)
    const r = await virl("run", file, "--out", dir, "--parallel-seeds", "2")
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(/seed 2 exited with 1; the end of .*seed-2.run\.log:/)
    expect(r.stderr).toContain("weights.bin")
    // seed 1's rft is back, as in the reference
    const rft = (d: string) => readEvals(path.join(d, "evals.jsonl")).filter((e) => e.seed === 1 && e.arm === "rft").map((e) => JSON.stringify(e)).sort()
    expect(rft(dir)).toHaveLength(3)
    expect(rft(dir)).toEqual(rft(sequential))
  }, 300_000)

  it("hands the command line's dotted flags to the seeds' processes", async () => {
    const dir = path.join(root, "flags")
    const r = await virl("run", file, "--out", dir, "--parallel-seeds", "2", "--sft_config.epochs=1")
    expect(r.status, r.stderr.slice(-2000)).toBe(0)
    for (const seed of [1, 2]) {
      const written = JSON.parse(fs.readFileSync(path.join(dir, `seed-${seed}`, "sft", "config.json"), "utf8")) as {
        config: { sft_config: { epochs: number } }
      }
      expect(written.config.sft_config.epochs).toBe(1)
    }
  }, 300_000)

  it("with --wandb, off a terminal: W&B runs made with the run's config, a summary each, and timestamped progress with time left", async () => {
    // a stand-in for W&B's API on loopback, recording what it is sent
    const seen: Array<{ url: string; body: any }> = []
    const server = http.createServer((req, res) => {
      let data = ""
      req.on("data", (c) => (data += c))
      req.on("end", () => {
        seen.push({ url: req.url ?? "", body: JSON.parse(data) })
        res.writeHead(200, { "content-type": "application/json" })
        res.end(
          JSON.stringify(req.url === "/graphql" ? { data: { upsertBucket: { bucket: { name: "r", project: { name: "p", entity: { name: "me" } } } } } } : {})
        )
      })
    })
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
    try {
      const dir = path.join(root, "wandb")
      const r = await virlWith(
        { WANDB_API_KEY: "k", WANDB_BASE_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, WANDB_PROJECT: "p" },
        "run",
        file,
        "--out",
        dir,
        "--wandb",
        "--parallel-seeds",
        "2"
      )
      expect(r.status, r.stderr).toBe(0)
      // stderr is a pipe here: timestamped lines, bars with their rate and what is left
      expect(r.stderr).toMatch(/^\d\d:\d\d:\d\d evaluations of seeds 1, 2 \[#+\] 24\/24 \d+s, [\d.]+\/s$/m)
      // each seed's log too (its process writes to a file): every line stamped, one line per update
      const log = fs.readFileSync(path.join(dir, "seed-1", "run.log"), "utf8")
      expect(log).toMatch(/^\d\d:\d\d:\d\d — seed 1, arm sft/m)
      expect(log).toMatch(/^\d\d:\d\d:\d\d ppo update 1\/1: reward [-\d.]+\/step, correct [\d.]+ %, rollout success [\d.]+ % of \d+ episodes, approx kl/m)
      expect(log).toMatch(/^\d\d:\d\d:\d\d sft epoch 2\/2: loss [\d.]+/m)
      const created = seen.filter((s) => s.url === "/graphql").map((s) => s.body.variables)
      // each arm and seed's W&B run carries that arm's resolved config, as W&B's client sends it
      const rl1 = created.find((v) => v.displayName === "rl seed 1")!
      const config = JSON.parse(rl1.config)
      const stored = JSON.parse(fs.readFileSync(path.join(dir, "seed-1", "rl", "config.json"), "utf8")).config
      expect(config.num_steps).toEqual({ desc: null, value: stored.num_steps })
      expect(config.sft_config.value).toEqual(stored.sft_config)
      // every arm and seed gets a summary: its final evaluations
      const summaries = seen.filter((s) => s.body.files?.["wandb-summary.json"] !== undefined)
      const runIds = new Set(created.filter((v) => v.jobType !== "experiment").map((v) => v.name))
      const summarized = new Set(summaries.map((s) => s.url.split("/")[4]))
      for (const id of runIds) expect(summarized.has(id)).toBe(true)
      const rlSummary = summaries.map((s) => ({ url: s.url, v: JSON.parse(s.body.files["wandb-summary.json"].content[0]) })).find((s) =>
        s.url.includes(`/${rl1.name}/`)
      )!.v
      expect(Object.keys(rlSummary)).toEqual(expect.arrayContaining(["eval/indist/per_step_accuracy", "eval/indist/success_rate", "kl/total"]))
    } finally {
      server.closeAllConnections()
      server.close()
    }
  }, 300_000)

  it("refuses --only-seed beside --seeds", async () => {
    const r = await virl("run", file, "--out", path.join(root, "x"), "--only-seed", "2", "--seeds", "2")
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(/--only-seed runs one seed: leave out --seeds and --parallel-seeds/)
  })
})
