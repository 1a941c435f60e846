import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { createClient } from "@libsql/client"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { tinyDatasets } from "../support/tiny-city.ts"
// @ts-expect-error: a plain JS script (no types)
import { postgresBin, startPostgres, stopPostgres } from "../../scripts/postgres.mjs"
import { virlInBackground } from "../support/processes.ts"
import { skipWithout } from "../support/system-packages.ts"
import { connectAuthenticated } from "../../src/cluster/transport.ts"

const BIN = path.resolve(import.meta.dirname, "../../bin/virl.mjs")
const root = fs.mkdtempSync(path.join(os.tmpdir(), "virl-cluster-"))
const datasets = path.join(root, "datasets")
/** Every runner and submitter here holds the cluster's secret, as a cluster's would. */
const env = { ...process.env, VIRL_DATASETS: datasets, VIRL_CLUSTER_SECRET: "the cluster secret of these tests, long enough" }
/** A process without a secret. */
const { VIRL_CLUSTER_SECRET: _, ...noSecret } = env
const PASSWORD = "pw#Secret-7"
const PORT = 54000 + (process.pid % 1000)
let url = ""
/** Sweep files inside the project (a runner runs only the project's own files), removed at the end. */
const inProject = path.resolve(import.meta.dirname, "../../test-output", `cluster-${process.pid}`)
fs.mkdirSync(inProject, { recursive: true })
const sweepFile = path.join(inProject, "cluster_sweep.ts")
const LABELS = ["verify_iter=1", "verify_iter=2", "verify_iter=3"]
const runners: ChildProcess[] = []

/** Rows of a query, by Debian's psql (fields split on |). */
const query = (sql: string): string[][] => {
  const r = spawnSync(path.join(postgresBin(), "psql"), [url, "-tAc", sql], { encoding: "utf8" })
  if (r.status !== 0) return []
  return r.stdout.trim() === "" ? [] : r.stdout.trim().split("\n").map((l) => l.split("|"))
}

const virl = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env })

/** A command of minutes, in the background (see virlInBackground). */
const virlLong = (...args: string[]) => virlInBackground(args, { env })

const startRunner = (port: number, out: string, db = url, extra: ReadonlyArray<string> = []) => {
  const log = fs.openSync(path.join(root, `runner-${port}.log`), "w")
  const child = spawn(process.execPath, [BIN, "runner", "--db", db, "--port", String(port), "--failover", "5", "--out", out, ...extra], {
    env,
    stdio: ["ignore", log, log]
  })
  runners.push(child)
  return child
}

const digest = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex")

/** Every file under dir (relative path → sha256), for comparing two runs' outputs. */
const weights = (trialDir: string) => {
  const out: Record<string, string> = {}
  for (const arm of ["sft", "rl"]) {
    for (const f of ["weights.bin", "optimizer.bin"]) {
      const p = path.join(trialDir, "seed-1", arm, "checkpoint", f)
      if (fs.existsSync(p)) out[`${arm}/${f}`] = digest(p)
    }
  }
  return out
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Alive and not a zombie (a child that exited while its parent is stopped stays one until the parent reaps it). */
const live = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return false
  }
}

const trialProcesses = (parent: number): number[] =>
  spawnSync("ps", ["-eo", "pid=,ppid=,args="], { encoding: "utf8" })
    .stdout.trim()
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => Number(f[1]) === parent && f.includes("--trial"))
    .map((f) => Number(f[0]))

const grepTree = (dir: string, needle: string): string[] => {
  const hits: string[] = []
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.isFile() && fs.statSync(p).size < 50_000_000 && fs.readFileSync(p).includes(needle)) hits.push(p)
    }
  }
  walk(dir)
  return hits
}

// the PostgreSQL tests skip where its server is missing (and fail instead in CI); SQLite's run anyway
const noServer = skipWithout("postgresql", "the cluster's test")

/** The test's sweep under another name (so that its trials are new jobs), its file's path. */
const writeSweep = (name: string, file: string) => {
  const core = pathToFileURL(path.resolve(import.meta.dirname, "../../src/core/experiment.ts")).href
  fs.writeFileSync(
    file,
    `import { experiment, sweep } from ${JSON.stringify(core)}
const base = experiment({
  name: "tiny", seeds: [1], suites: ["indist", "rule-ood", "visual-ood"], evaluations: 1,
  arms: [{ name: "sft", recipe: { kind: "sft" } }, { name: "rl", recipe: { kind: "ppo", from: "sft" } }],
  config: { "sft_config.epochs": 2, num_steps: 32, num_updates: 4, num_processes: 2, "eval_config.num_traj": 3, "eval_config.num_traj_visual": 2 }
})
export default sweep({ name: ${
      JSON.stringify(name)
    }, base, compare: "rl", grid: { verify_iter: [1, 2, 3].map((n) => ({ label: String(n), config: { "env_config.verify_iter": n } })) } })
`
  )
  return file
}

beforeAll(async () => {
  await tinyDatasets(datasets)
  writeSweep("cluster_sweep", sweepFile)
  if (!noServer) url = startPostgres({ port: PORT, password: PASSWORD })
}, 120_000)

afterAll(() => {
  for (const r of runners) if (r.exitCode === null) r.kill("SIGKILL")
  if (!noServer) stopPostgres({ port: PORT, remove: true })
  // VIRL_TEST_KEEP=1 keeps the runners' logs and folders for a look afterwards
  if (process.env["VIRL_TEST_KEEP"] === undefined) fs.rmSync(root, { recursive: true, force: true })
  else console.log(`kept ${root}`)
  fs.rmSync(inProject, { recursive: true, force: true })
})

describe.skipIf(noServer)("virl sweep --sharding cluster on PostgreSQL", () => {
  it("a runner killed mid-trial: its trial moves to the other runner, every trial finishes once, results as local", async () => {
    // the reference: the same sweep, local
    const local = await virlLong("sweep", sweepFile, "--out", path.join(root, "local"), "--parallel", "2")
    expect(local.status, local.stderr).toBe(0)

    const outA = path.join(root, "runner-a")
    const outB = path.join(root, "runner-b")
    // both at the same moment on a fresh database: one makes the cluster's tables while the other waits
    const a = startRunner(PORT + 1001, outA)
    const b = startRunner(PORT + 1002, outB)
    // both runners registered and their shards settled before the sweep is submitted (a runner
    // joining later would take running trials over: correct, but not this test's subject)
    for (let i = 0; i < 600 && query("SELECT count(*) FROM cluster_runners WHERE healthy")[0]?.[0] !== "2"; i++) await new Promise((r) => setTimeout(r, 200))
    const runnerLogs = () => [PORT + 1001, PORT + 1002].map((p) => fs.readFileSync(path.join(root, `runner-${p}.log`), "utf8")).join("\n---\n")
    expect(query("SELECT count(*) FROM cluster_runners WHERE healthy"), runnerLogs()).toEqual([["2"]])
    await new Promise((r) => setTimeout(r, 4000))
    const submitLog = path.join(root, "submit.log")
    const submitFd = fs.openSync(submitLog, "w")
    const submitter = spawn(process.execPath, [BIN, "sweep", sweepFile, "--sharding", "cluster", "--db", url, "--out", path.join(root, "cluster")], {
      env,
      stdio: ["ignore", submitFd, submitFd]
    })
    const submitted = new Promise<number>((resolve) => submitter.on("exit", (code) => resolve(code ?? 1)))

    // wait for a trial to run, then kill its runner with SIGKILL half-way through
    let victim: { runner: string; label: string } | undefined
    for (let i = 0; i < 600 && victim === undefined; i++) {
      await new Promise((r) => setTimeout(r, 200))
      const running = query("SELECT runner, label FROM virl_jobs WHERE state = 'running'")[0]
      if (running !== undefined) victim = { runner: running[0]!, label: running[1]! }
    }
    expect(victim).toBeDefined()
    const killed = victim!.runner.endsWith(`:${PORT + 1001}`) ? a : b
    await new Promise((r) => setTimeout(r, 1000))
    expect(query(`SELECT state FROM virl_jobs WHERE label = '${victim!.label}'`)).toEqual([["running"]])
    const orphans = trialProcesses(killed.pid!)
    expect(orphans.length).toBe(1)
    killed.kill("SIGKILL")
    // the trial's process dies with its runner (no orphan writing into the trial's folder)
    for (let i = 0; i < 100 && orphans.some(alive); i++) await new Promise((r) => setTimeout(r, 100))
    expect(orphans.filter(alive)).toEqual([])

    const code = await submitted
    const output = fs.readFileSync(submitLog, "utf8")
    expect(code, output).toBe(0)
    const rows = query("SELECT label, state, runner, attempts FROM virl_jobs ORDER BY label").map(([label, state, runner, attempts]) => ({
      label,
      state,
      runner,
      attempts: Number(attempts)
    }))
    expect(rows.map((r) => [r.label, r.state])).toEqual(LABELS.map((l) => [l, "done"]))
    // the killed trial was taken over by the survivor
    const survivor = killed === a ? PORT + 1002 : PORT + 1001
    const taken = rows.find((r) => r.label === victim!.label)!
    expect(taken.runner).toBe(`127.0.0.1:${survivor}`)
    expect(taken.attempts).toBeGreaterThanOrEqual(2)

    // each trial finished exactly once across the runners
    const logs = [PORT + 1001, PORT + 1002].map((p) => fs.readFileSync(path.join(root, `runner-${p}.log`), "utf8")).join("\n")
    for (const label of LABELS) expect(logs.split("\n").filter((l) => l.endsWith(` ${label}: done`)).length, logs).toBe(1)

    // results and weights as the local run's
    for (const label of LABELS) {
      const localDir = path.join(root, "local", "trials", label)
      const clusterResults = path.join(root, "cluster", "trials", label, "results.json")
      expect(JSON.parse(fs.readFileSync(clusterResults, "utf8")).arms).toEqual(JSON.parse(fs.readFileSync(path.join(localDir, "results.json"), "utf8")).arms)
      const ranOn = [outA, outB].map((o) => path.join(o, "cluster_sweep", "trials", label)).filter((d) => fs.existsSync(path.join(d, "results.json")))
      expect(ranOn.length).toBe(1)
      expect(weights(ranOn[0]!)).toEqual(weights(localDir))
      expect(Object.keys(weights(localDir)).length).toBe(4)
    }
    expect(fs.readFileSync(path.join(root, "cluster", "sweep.md"), "utf8")).toBe(fs.readFileSync(path.join(root, "local", "sweep.md"), "utf8"))

    // submitted again: nothing runs, the journaled results come back
    fs.rmSync(path.join(root, "cluster"), { recursive: true })
    const again = virl("sweep", sweepFile, "--sharding", "cluster", "--db", url, "--out", path.join(root, "cluster"))
    expect(again.status, again.stderr).toBe(0)
    const logsAfter = [PORT + 1001, PORT + 1002].map((p) => fs.readFileSync(path.join(root, `runner-${p}.log`), "utf8")).join("\n")
    expect(logsAfter.split("\n").filter((l) => l.includes(": running in ")).length).toBe(logs.split("\n").filter((l) => l.includes(": running in ")).length)

    // --status shows every trial; the password appears nowhere
    const status = virl("sweep", "--status", "--db", url)
    expect(status.status, status.stderr).toBe(0)
    expect(status.stdout).toMatch(/cluster_sweep: 3 trials — 0 running, 0 pending, 0 failed, 3 done/)
    expect(status.stdout).toContain(`127.0.0.1:${survivor}`)
    for (const text of [status.stdout, status.stderr, output, again.stderr, again.stdout, logsAfter]) expect(text).not.toContain(PASSWORD)
    expect(output).toContain("postgres://virl:***@127.0.0.1")
    expect(grepTree(root, PASSWORD).filter((f) => !f.includes(`virl-postgres`))).toEqual([])
  }, 420_000)

  it("evaluation suites as durable jobs: the checkpoint through the database, a runner killed mid-suite, metrics and logs as local", async () => {
    // the runners of the sweep test go; two fresh ones come (no folder shared with the submitter)
    for (const r of runners) if (r.exitCode === null) r.kill("SIGKILL")
    const checkpoint = path.join(root, "local", "trials", "verify_iter=1", "seed-1", "rl", "checkpoint")
    const flags = ["--eval_config.num_traj=60", "--eval_config.num_traj_visual=40"]
    const suites = ["indist", "rule-ood", "visual-ood"]
    const local = await virlLong("eval", "--policy", checkpoint, "--suite", suites.join(","), "--json", "--log", path.join(root, "eval-local"), ...flags)
    expect(local.status, local.stderr).toBe(0)

    const c = startRunner(PORT + 1004, path.join(root, "runner-c"))
    const d = startRunner(PORT + 1005, path.join(root, "runner-d"))
    for (
      let i = 0;
      i < 300 &&
      Number(
          query(`SELECT count(*) FROM cluster_runners WHERE healthy AND (address LIKE '%:${PORT + 1004}' OR address LIKE '%:${PORT + 1005}')`)[0]?.[0] ?? 0
        ) < 2;
      i++
    ) await new Promise((r) => setTimeout(r, 200))
    await new Promise((r) => setTimeout(r, 6000))
    const submitLog = path.join(root, "eval-submit.log")
    const fd = fs.openSync(submitLog, "w")
    const submitter = spawn(process.execPath, [
      BIN,
      "eval",
      "--policy",
      checkpoint,
      "--suite",
      suites.join(","),
      "--json",
      "--log",
      path.join(root, "eval-cluster"),
      "--sharding",
      "cluster",
      "--db",
      url,
      ...flags
    ], { env, stdio: ["ignore", fd, fd] })
    const submitted = new Promise<number>((resolve) => submitter.on("exit", (code) => resolve(code ?? 1)))

    let victim: { runner: string; label: string } | undefined
    for (let i = 0; i < 1200 && victim === undefined; i++) {
      await new Promise((r) => setTimeout(r, 100))
      const running = query("SELECT runner, label FROM virl_jobs WHERE state = 'running' AND sweep LIKE 'eval %'")[0]
      if (running !== undefined) victim = { runner: running[0]!, label: running[1]! }
    }
    expect(victim).toBeDefined()
    const killed = victim!.runner.endsWith(`:${PORT + 1004}`) ? c : d
    killed.kill("SIGKILL")

    const code = await submitted
    const output = fs.readFileSync(submitLog, "utf8")
    expect(code, output).toBe(0)
    // the metrics lines and the reference-format logs are the local run's
    const metricLines = (text: string) => text.trim().split("\n").filter((l) => l.startsWith("{"))
    expect(metricLines(output)).toEqual(metricLines(local.stdout))
    for (const suite of suites) {
      expect(fs.readFileSync(path.join(root, "eval-cluster", `${suite}.jsonl`), "utf8")).toBe(
        fs.readFileSync(path.join(root, "eval-local", `${suite}.jsonl`), "utf8")
      )
    }
    const rows = query("SELECT label, state, runner, attempts FROM virl_jobs WHERE sweep LIKE 'eval %' ORDER BY label")
    expect(rows.map((r) => [r[0], r[1]])).toEqual([...suites].sort().map((s) => [s, "done"]))
    const taken = rows.find((r) => r[0] === victim!.label)!
    expect(Number(taken[3])).toBeGreaterThanOrEqual(2)
    expect(taken[2]).not.toBe(victim!.runner)
    // the checkpoint came through the database: the runners' copies are the submitter's files
    const copies = [path.join(root, "runner-c"), path.join(root, "runner-d")].flatMap((
      o
    ) => (fs.existsSync(path.join(o, "checkpoints")) ? fs.readdirSync(path.join(o, "checkpoints")).map((h) => path.join(o, "checkpoints", h)) : []))
    expect(copies.length).toBeGreaterThanOrEqual(1)
    for (const copy of copies) expect(digest(path.join(copy, "weights.bin"))).toBe(digest(path.join(checkpoint, "weights.bin")))

    // submitted again: answered from the journal, nothing runs
    const again = virl("eval", "--policy", checkpoint, "--suite", suites.join(","), "--json", "--sharding", "cluster", "--db", url, ...flags)
    expect(again.status, again.stderr).toBe(0)
    expect(metricLines(again.stdout)).toEqual(metricLines(local.stdout))
    expect(output + again.stderr).not.toContain(PASSWORD)
  }, 300_000)

  it("a wrong password is an error that does not print it", () => {
    const wrong = url.replace(encodeURIComponent(PASSWORD), "not-the-Password-9")
    const r = virl("sweep", "--status", "--db", wrong)
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(/error: .*postgres:\/\/virl:\*\*\*@127\.0\.0\.1/)
    expect(r.stderr + r.stdout).not.toContain("not-the-Password-9")
  }, 60_000)
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe.skipIf(noServer)("cluster faults on PostgreSQL", () => {
  const localDir = path.join(root, "local")
  /** The undisturbed sweep, run here (the first test made it when it ran). */
  const reference = async () => {
    if (fs.existsSync(path.join(localDir, "sweep.md"))) return
    const local = await virlLong("sweep", sweepFile, "--out", localDir, "--parallel", "2")
    expect(local.status, local.stderr).toBe(0)
  }
  /** Every runner so far killed; two fresh ones registered, healthy and settled. */
  const freshRunners = async (ports: ReadonlyArray<number>, outs: ReadonlyArray<string>, extra: ReadonlyArray<string> = []) => {
    for (const r of runners) if (r.exitCode === null) r.kill("SIGKILL")
    const started = ports.map((p, k) => startRunner(p, outs[k]!, url, extra))
    const healthy = () =>
      Number(query(`SELECT count(*) FROM cluster_runners WHERE healthy AND (${ports.map((p) => `address LIKE '%:${p}'`).join(" OR ")})`)[0]?.[0] ?? 0)
    for (let i = 0; i < 600 && healthy() < ports.length; i++) await sleep(200)
    expect(healthy()).toBe(ports.length)
    await sleep(6000)
    return started
  }
  const submit = (file: string, out: string) => {
    const logFile = path.join(root, `submit-${path.basename(out)}.log`)
    const fd = fs.openSync(logFile, "w")
    const child = spawn(process.execPath, [BIN, "sweep", file, "--sharding", "cluster", "--db", url, "--out", out], { env, stdio: ["ignore", fd, fd] })
    return { exit: new Promise<number>((resolve) => child.on("exit", (code) => resolve(code ?? 1))), log: () => fs.readFileSync(logFile, "utf8") }
  }
  const running = async (sweep: string) => {
    for (let i = 0; i < 1200; i++) {
      const row = query(`SELECT runner, label FROM virl_jobs WHERE state = 'running' AND sweep = '${sweep}'`)[0]
      if (row !== undefined) return { runner: row[0]!, label: row[1]! }
      await sleep(100)
    }
    throw new Error(`no trial of ${sweep} ever ran`)
  }
  /**
   * The submitter's exit, or — past `deadline` (ms since the epoch) — a failure that says where
   * the cluster stood: each job's row and the tails of the runners' and the submitter's logs
   * (a timeout of the test itself would say nothing).
   */
  const exitBy = async (submitter: ReturnType<typeof submit>, deadline: number, ports: ReadonlyArray<number>) => {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const tail = (text: string) => text.trim().split("\n").slice(-40).join("\n")
        const jobs = query("SELECT sweep, label, state, runner, attempts FROM virl_jobs ORDER BY sweep, label").map((r) => r.join(" ")).join("\n")
        const runnerLogs = ports.map((p) => `--- runner ${p}\n${tail(fs.readFileSync(path.join(root, `runner-${p}.log`), "utf8"))}`).join("\n")
        reject(new Error(`the submitter had not exited by the deadline\n--- virl_jobs\n${jobs}\n${runnerLogs}\n--- submitter\n${tail(submitter.log())}`))
      }, Math.max(0, deadline - Date.now()))
    })
    try {
      return await Promise.race([submitter.exit, late])
    } finally {
      clearTimeout(timer)
    }
  }
  const logsOf = (ports: ReadonlyArray<number>) => ports.map((p) => fs.readFileSync(path.join(root, `runner-${p}.log`), "utf8")).join("\n")
  /** Every trial done once, its results and weights the undisturbed sweep's. */
  const endedOnce = (sweep: string, ports: ReadonlyArray<number>, out: string, outs: ReadonlyArray<string>) => {
    expect(query(`SELECT label, state FROM virl_jobs WHERE sweep = '${sweep}' ORDER BY label`)).toEqual(LABELS.map((l) => [l, "done"]))
    const logs = logsOf(ports)
    for (const label of LABELS) expect(logs.split("\n").filter((l) => l.endsWith(`${sweep} ${label}: done`)).length, logs).toBe(1)
    expect(logs).not.toMatch(/crashed|exited with/)
    for (const label of LABELS) {
      const local = path.join(localDir, "trials", label)
      expect(JSON.parse(fs.readFileSync(path.join(out, "trials", label, "results.json"), "utf8")).arms).toEqual(
        JSON.parse(fs.readFileSync(path.join(local, "results.json"), "utf8")).arms
      )
      // where the trial finished, its checkpoints are the undisturbed run's
      const finished = outs.map((o) => path.join(o, sweep, "trials", label)).filter((d) => fs.existsSync(path.join(d, "results.json")))
      expect(finished.length).toBeGreaterThanOrEqual(1)
      for (const d of finished) {
        expect(weights(d)).toEqual(weights(local))
        // a run interrupted and taken up again logged each epoch and update once
        for (const arm of ["sft", "rl"]) {
          const keys = fs.readFileSync(path.join(d, "seed-1", arm, "metrics.jsonl"), "utf8").trim().split("\n").map((line) => {
            const r = JSON.parse(line) as { phase: string; epoch?: number; update?: number }
            return `${r.phase}:${r.epoch ?? r.update}`
          })
          expect(new Set(keys).size, `${d} ${arm}`).toBe(keys.length)
        }
      }
    }
    return logs
  }

  it("PostgreSQL restarted mid-sweep: runners and submitter wait for it; every trial ends once, as undisturbed", async () => {
    const deadline = Date.now() + 400_000
    await reference()
    const file = writeSweep("pg_restart", path.join(inProject, "pg_restart.ts"))
    const ports = [PORT + 1020, PORT + 1021]
    const outs = [path.join(root, "runner-e"), path.join(root, "runner-f")]
    await freshRunners(ports, outs)
    const out = path.join(root, "pg-cluster")
    const submitter = submit(file, out)
    const victim = await running("pg_restart")
    await sleep(2000)
    const before = query(`SELECT label, attempts FROM virl_jobs WHERE sweep = 'pg_restart' AND state = 'running'`)
    stopPostgres({ port: PORT, remove: false })
    // away for three times the failover time: every runner's shard locks lapse
    await sleep(15_000)
    expect(query("SELECT 1")).toEqual([])
    startPostgres({ port: PORT, password: PASSWORD })
    const code = await exitBy(submitter, deadline, ports)
    expect(code, submitter.log()).toBe(0)
    expect(submitter.log()).toMatch(/the cluster's database cannot be reached .*; waiting for it, up to 10 minutes/)
    expect(submitter.log()).toMatch(/the cluster's database is back after \d+ s/)
    const logs = endedOnce("pg_restart", ports, out, outs)
    // the runners felt it: their trials under way were interrupted with their shards, and ran
    // again from their checkpoints once the database was back (the same record, the same results)
    expect(logs).toContain("Shard lock storage is unhealthy")
    for (const [label] of before) expect(logs.split("\n").filter((l) => l.includes(`pg_restart ${label}: running in`)).length).toBeGreaterThanOrEqual(1)
    expect(victim.label).toMatch(/^verify_iter=/)
  }, 420_000)

  it("a runner stopped (SIGSTOP) past its failover time: its trial moves, its process stops itself, continued it writes nothing", async () => {
    const deadline = Date.now() + 400_000
    await reference()
    const file = writeSweep("frozen_runner", path.join(inProject, "frozen_runner.ts"))
    const ports = [PORT + 1022, PORT + 1023]
    const outs = [path.join(root, "runner-g"), path.join(root, "runner-h")]
    const [g, h] = await freshRunners(ports, outs, ["--parallel", "2"])
    const out = path.join(root, "frozen-cluster")
    const submitter = submit(file, out)
    const victim = await running("frozen_runner")
    await sleep(1000)
    const k = victim.runner.endsWith(`:${ports[0]}`) ? 0 : 1
    const stopped = [g!, h!][k]!
    const other = `127.0.0.1:${ports[1 - k]}`
    const children = trialProcesses(stopped.pid!)
    expect(children.length).toBeGreaterThanOrEqual(1)
    stopped.kill("SIGSTOP")
    const frozenAt = Date.now()
    let quietFrom = Infinity
    try {
      // its trial processes hear nothing from it for --failover seconds and stop themselves
      for (let i = 0; i < 300 && children.some(live); i++) await sleep(100)
      expect(children.filter(live)).toEqual([])
      quietFrom = Date.now()
      // the other runner takes the trial over while it is stopped
      const holder = () => query(`SELECT runner, attempts FROM virl_jobs WHERE sweep = 'frozen_runner' AND label = '${victim.label}'`)[0]
      for (let i = 0; i < 900 && holder()?.[0] !== other; i++) await sleep(100)
      expect(holder()?.[0]).toBe(other)
      expect(Number(holder()?.[1])).toBe(2)
    } finally {
      stopped.kill("SIGCONT")
    }
    const continued = Date.now()
    const code = await exitBy(submitter, deadline, ports)
    expect(code, submitter.log()).toBe(0)
    const logs = endedOnce("frozen_runner", ports, out, outs)
    // continued, its superseded run stood down without a result (the cluster may then hand the
    // shard back to it: the trial goes on from its own checkpoints under a new attempt)
    const stoppedLog = fs.readFileSync(path.join(root, `runner-${ports[k]}.log`), "utf8")
    const stoodDown = stoppedLog.includes(
      `frozen_runner ${victim.label}: taken over by ${other} (attempt 2) while this runner was away; stopped here, the result is theirs`
    )
    // or the cluster took its shard away first (a shard-lock check timed out on a busy machine),
    // which interrupted the superseded run before it noticed, and handed the trial back later
    const label = victim.label.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    const backLater = new RegExp(`frozen_runner ${label}: running in .* \\(attempt ([3-9]|\\d{2,})\\)`).test(stoppedLog)
    expect(stoodDown || backLater, stoppedLog).toBe(true)
    // its processes stopped soon after --failover (5 s), given 5 s to stop (13.1 s measured on 2 busy cores: a step
    // longer than a second defers the check); from then on, nothing was written
    expect(quietFrom - frozenAt).toBeLessThan(25_000)
    const written: string[] = []
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name)
        if (e.isDirectory()) walk(p)
        else if (fs.statSync(p).mtimeMs > quietFrom && fs.statSync(p).mtimeMs < continued) written.push(p)
      }
    }
    const mine = path.join(outs[k]!, "frozen_runner")
    if (fs.existsSync(mine)) walk(mine)
    expect(written, logs).toEqual([])
    expect(stopped.exitCode).toBeNull()
  }, 420_000)
})

describe("virl runner on SQLite", () => {
  it("two runners and a submitter on one file: evaluation suites finish, as local", async () => {
    const db = `sqlite:${path.join(root, "one-machine.db")}`
    // a checkpoint of its own (a short SFT), so that this test stands alone
    const trained = virl("train", "sft", "--out", path.join(root, "sqlite-sft"), "--sft_config.epochs=1", "--sft_config.routes=3", "--eval_config.num_traj=2")
    expect(trained.status, trained.stderr).toBe(0)
    const checkpoint = path.join(root, "sqlite-sft", "checkpoint")
    const flags = ["--eval_config.num_traj=20", "--eval_config.num_traj_visual=10"]
    const local = virl("eval", "--policy", checkpoint, "--suite", "indist,rule-ood,visual-ood", "--json", ...flags)
    expect(local.status, local.stderr).toBe(0)
    // both runners in one folder, as `virl runner` twice on one machine: they unpack the checkpoint at once
    startRunner(PORT + 1006, path.join(root, "runner-shared"), db)
    startRunner(PORT + 1007, path.join(root, "runner-shared"), db)
    await new Promise((r) => setTimeout(r, 8000))
    const r = spawn(process.execPath, [
      BIN,
      "eval",
      "--policy",
      checkpoint,
      "--suite",
      "indist,rule-ood,visual-ood",
      "--json",
      "--sharding",
      "cluster",
      "--db",
      db,
      ...flags
    ], { env })
    let stdout = ""
    let stderr = ""
    r.stdout.on("data", (b) => (stdout += String(b)))
    r.stderr.on("data", (b) => (stderr += String(b)))
    const code = await new Promise<number>((resolve) => r.on("exit", (c) => resolve(c ?? 1)))
    expect(code, stderr).toBe(0)
    const lines = (text: string) => text.trim().split("\n").filter((l) => l.startsWith("{"))
    expect(lines(stdout)).toEqual(lines(local.stdout))
    const status = virl("sweep", "--status", "--db", db)
    expect(status.stdout).toMatch(/3 trials — 0 running, 0 pending, 0 failed, 3 done/)

    // a job that failed (a dataset folder without its routes) runs again once the cause is fixed
    const later = path.join(root, "later-city")
    fs.mkdirSync(later)
    const evalLater = () => virl("eval", "--policy", checkpoint, "--suite", "indist", "--data", later, "--json", "--sharding", "cluster", "--db", db, ...flags)
    const failed = evalLater()
    expect(failed.status).not.toBe(0)
    expect(failed.stderr).toMatch(/1 of 1 suites failed on the cluster:\nindist: .*route_infos\.json/)
    fs.cpSync(path.join(datasets, "nyc-eval"), later, { recursive: true })
    const fixed = evalLater()
    expect(fixed.status, fixed.stderr).toBe(0)
    expect(fixed.stderr).toMatch(/failed before; submitted again \(round 1\)/)
    const direct = virl("eval", "--policy", checkpoint, "--suite", "indist", "--data", later, "--json", ...flags)
    expect(lines(fixed.stdout)).toEqual(lines(direct.stdout))
  }, 180_000)

  it("with a cluster secret: strangers are refused and logged, the runner goes on; no runner without a secret unless --insecure", async () => {
    const db = `sqlite:${path.join(root, "secret.db")}`
    const secret = { ...env, VIRL_CLUSTER_SECRET: "s3cret-of-this-cluster-and-no-other-one" }
    const port = PORT + 1010
    const logFile = path.join(root, "runner-secret.log")
    const log = fs.openSync(logFile, "w")
    const runner = spawn(process.execPath, [BIN, "runner", "--db", db, "--port", String(port), "--out", path.join(root, "runner-secret")], {
      env: secret,
      stdio: ["ignore", log, log]
    })
    runners.push(runner)
    const until = async (done: () => boolean) => {
      for (let i = 0; i < 600 && !done(); i++) await new Promise((r) => setTimeout(r, 100))
    }
    await until(() => fs.readFileSync(logFile, "utf8").includes("connections must prove the cluster secret"))
    await new Promise((r) => setTimeout(r, 2000))
    // a stranger that sends bytes of its own, and one that guesses the secret
    await new Promise<void>((resolve) => {
      const s = net.createConnection({ host: "127.0.0.1", port }, () => s.write(Buffer.alloc(64, 1)))
      s.resume()
      s.on("error", () => undefined)
      s.on("close", () => resolve())
    })
    await expect(connectAuthenticated("127.0.0.1", port, Buffer.from("a guess, long enough to be accepted as one"))).rejects.toThrow(
      /the cluster secrets differ/
    )
    await until(() => (fs.readFileSync(logFile, "utf8").match(/refused a connection from 127\.0\.0\.1:\d+/g) ?? []).length >= 2)
    const logged = fs.readFileSync(logFile, "utf8")
    expect(logged).toMatch(/refused a connection from 127\.0\.0\.1:\d+: it does not speak the cluster's protocol/)
    expect(logged).toMatch(/refused a connection from 127\.0\.0\.1:\d+: it does not hold the cluster secret/)
    expect(runner.exitCode).toBeNull()
    // a submitter with the secret still gets its work done
    const submitted = spawnSync(process.execPath, [
      BIN,
      "eval",
      "--policy",
      "oracle",
      "--suite",
      "indist",
      "--json",
      "--sharding",
      "cluster",
      "--db",
      db,
      "--eval_config.num_traj=2"
    ], {
      encoding: "utf8",
      env: secret,
      timeout: 120_000
    })
    expect(submitted.status, submitted.stderr).toBe(0)
    expect(JSON.parse(submitted.stdout.trim().split("\n").at(-1)!).per_step_accuracy).toBe(1)
    runner.kill("SIGKILL")

    // no secret: no runner, on loopback or beyond, unless --insecure; a short secret is refused
    const bare = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: noSecret })
    const loopback = bare("runner", "--db", db, "--port", String(port + 1))
    expect(loopback.status).toBe(1)
    expect(loopback.stderr).toMatch(
      /runner --host 127\.0\.0\.1: no cluster secret, so nothing would check who sends this runner work — on loopback, any user of this machine/
    )
    const open = bare("runner", "--db", db, "--host", "0.0.0.0", "--port", String(port + 1))
    expect(open.status).toBe(1)
    expect(open.stderr).toMatch(/runner --host 0\.0\.0\.0: no cluster secret, .*anyone who reaches the port\. Set VIRL_CLUSTER_SECRET/)
    const short = spawnSync(process.execPath, [BIN, "runner", "--db", db, "--port", String(port + 1)], {
      encoding: "utf8",
      env: { ...noSecret, VIRL_CLUSTER_SECRET: "short" }
    })
    expect(short.status).not.toBe(0)
    expect(short.stderr).toMatch(/VIRL_CLUSTER_SECRET: the cluster secret has 5 characters; use at least 32/)
    const insecureLog = path.join(root, "runner-insecure.log")
    const insecureFd = fs.openSync(insecureLog, "w")
    const insecure = spawn(process.execPath, [BIN, "runner", "--db", db, "--host", "0.0.0.0", "--port", String(port + 1), "--insecure"], {
      env: noSecret,
      stdio: ["ignore", insecureFd, insecureFd]
    })
    runners.push(insecure)
    await until(() => fs.readFileSync(insecureLog, "utf8").includes("no cluster secret"))
    expect(fs.readFileSync(insecureLog, "utf8")).toMatch(/runner 0\.0\.0\.0:\d+ on sqlite:.*no cluster secret \(--insecure\)/)
    insecure.kill("SIGKILL")
  }, 180_000)

  it("submits only a sweep file inside the project: a runner would import and run it", () => {
    const outside = writeSweep("outside", path.join(root, "outside_sweep.ts"))
    const r = virl("sweep", outside, "--sharding", "cluster", "--db", `sqlite:${path.join(root, "outside.db")}`)
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain(`${outside} is outside the project`)
  }, 60_000)

  it("refuses a database set up by another version of virl", async () => {
    const file = path.join(root, "other.db")
    const db = createClient({ url: `file:${file}` })
    await db.execute("CREATE TABLE virl_meta (name VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)")
    await db.execute("INSERT INTO virl_meta VALUES ('schema', 'virl-cluster/0 (old)'), ('virl', '0.0.1')")
    db.close()
    const r = virl("runner", "--db", `sqlite:${file}`, "--port", String(PORT + 1003))
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(/was set up by virl 0\.0\.1 with the schema "virl-cluster\/0 \(old\)"; this is virl \d+\.\d+\.\d+/)
  }, 60_000)
})
