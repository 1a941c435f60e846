/**
 * `npm run bench:study`: where the studies' time goes on this machine, and the ratio against the
 * previous commit run in the same invocation — each study from an empty cache, the current tree
 * and the baseline (a git worktree at BASELINE, default HEAD~1) one after the other, so that a
 * speed-up is a measured ratio and not a memory.
 *
 * Phases: the default cities, the suites' cities, the base (its mixture, expert steps and
 * training), and per recipe (SFT, PPO, RFT) training, evaluation and the KL probe, from the run
 * folder's phases.jsonl; the wall time of the whole command. A baseline from before phases.jsonl
 * shows its wall time only.
 *
 * Env: STUDIES=sft_vs_rl,frontier-quick (default both), BASELINE=<commit> (default HEAD~1; "none"
 * skips it), KEEP=1 keeps the run folders.
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const ROOT = path.resolve(import.meta.dirname, "..")
const STUDIES: Record<string, ReadonlyArray<string>> = {
  sft_vs_rl: ["run", "experiments/sft_vs_rl.ts"],
  "frontier-quick": ["run", "experiments/frontier.ts", "--quick"]
}
const chosen = (process.env["STUDIES"] ?? Object.keys(STUDIES).join(",")).split(",").filter((s) => s !== "")
const baseline = process.env["BASELINE"] ?? "HEAD~1"

interface Timing {
  readonly wall: number
  /** Seconds per phase, where the run folder says (phases.jsonl). */
  readonly phases: Map<string, number> | undefined
}

/** The phases of a run folder, summed: cities, the base, and per recipe its training, evaluation and KL. */
const phasesOf = (runDir: string, recipeOf: (arm: string) => string): Map<string, number> | undefined => {
  const file = path.join(runDir, "phases.jsonl")
  if (!fs.existsSync(file)) return undefined
  const out = new Map<string, number>()
  const add = (k: string, v: number) => out.set(k, (out.get(k) ?? 0) + v)
  for (const line of fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "")) {
    const r = JSON.parse(line) as Record<string, number | string>
    if (r["phase"] === "cities") add("suites' cities", Number(r["seconds"]))
    if (typeof r["arm"] !== "string") continue
    const kind = recipeOf(r["arm"])
    if (kind === "pretrain") {
      add("base: mixture, expert steps, training", Number(r["training_seconds"]))
      add("base: evaluation", Number(r["evaluation_seconds"]))
      continue
    }
    add(`${kind}: training`, Number(r["training_seconds"]))
    add(`${kind}: evaluation`, Number(r["evaluation_seconds"]))
    add(`${kind}: KL probe`, Number(r["kl_seconds"]))
  }
  return out
}

const recipeKind = (arm: string): string =>
  arm === "base" ? "pretrain" : arm === "init" ? "init (sft)" : arm.startsWith("sft") ? "sft" : arm.startsWith("rft") ? "rft" : "ppo"

/** Runs `virl ARGS` in `repo` from an empty cache; its wall time and phases. */
const timeStudy = async (repo: string, args: ReadonlyArray<string>, label: string): Promise<Timing> => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `virl-bench-study-${label}-`))
  const out = path.join(scratch, "run")
  const t0 = performance.now()
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, [path.join(repo, "bin/virl.mjs"), ...args, "--out", out], {
      cwd: repo,
      env: { ...process.env, VIRL_CACHE: path.join(scratch, "cache"), VIRL_DATASETS: "" },
      stdio: ["ignore", "ignore", "pipe"]
    })
    let err = ""
    child.stderr.on("data", (d) => (err = (err + String(d)).slice(-4000)))
    child.on("exit", (c) => {
      if (c !== 0) process.stderr.write(`${label}: exited with ${c}\n${err}\n`)
      resolve(c ?? 1)
    })
  })
  const wall = (performance.now() - t0) / 1000
  const phases = code === 0 ? phasesOf(out, recipeKind) : undefined
  if (process.env["KEEP"] !== "1") fs.rmSync(scratch, { recursive: true, force: true })
  else console.log(`  (kept ${scratch})`)
  return { wall, phases }
}

/** A worktree of `commit` beside this one, sharing its node_modules and native build. */
const worktree = (commit: string): string | undefined => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "virl-bench-baseline-"))
  const made = spawnSync("git", ["worktree", "add", "--detach", dir, commit], { cwd: ROOT, encoding: "utf8" })
  if (made.status !== 0) {
    console.log(`no baseline: git worktree add ${commit} failed (${made.stderr.trim()})`)
    return undefined
  }
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"))
  const libm = path.join(ROOT, "native", "libm", "build")
  if (fs.existsSync(libm)) fs.cpSync(libm, path.join(dir, "native", "libm", "build"), { recursive: true })
  return dir
}

const fmt = (s: number | undefined) => (s === undefined ? "—" : s.toFixed(1).padStart(8))

const main = async () => {
  const head = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).stdout.trim()
  const base = baseline === "none" ? undefined : worktree(baseline)
  const baseName = base === undefined ? undefined : spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: base, encoding: "utf8" }).stdout.trim()
  console.log(
    `studies from an empty cache — ${os.availableParallelism()} cores, Node ${process.version}; this tree (${head}, uncommitted changes included)${
      baseName === undefined ? "" : ` against ${baseName} (${baseline})`
    }; seconds`
  )
  try {
    for (const name of chosen) {
      const args = STUDIES[name]
      if (args === undefined) throw new Error(`STUDIES: no study ${name}; the studies: ${Object.keys(STUDIES).join(", ")}`)
      const now = await timeStudy(ROOT, args, `${name}-current`)
      const then = base === undefined ? undefined : await timeStudy(base, args, `${name}-baseline`)
      console.log(`\nnpx virl ${args.join(" ")}`)
      console.log(`  ${"phase".padEnd(40)} ${"baseline".padStart(8)} ${"current".padStart(8)}  ratio`)
      const keys = [...new Set([...(then?.phases?.keys() ?? []), ...(now.phases?.keys() ?? [])])].sort()
      const row = (k: string, a: number | undefined, b: number | undefined) =>
        console.log(`  ${k.padEnd(40)} ${fmt(a)} ${fmt(b)}  ${a === undefined || b === undefined || b === 0 ? "" : `${(a / b).toFixed(2)}× faster`}`)
      for (const k of keys) row(k, then?.phases?.get(k), now.phases?.get(k))
      row("wall time (the whole command)", then?.wall, now.wall)
    }
  } finally {
    if (base !== undefined) spawnSync("git", ["worktree", "remove", "--force", base], { cwd: ROOT })
  }
}

main().catch((e) => {
  console.error(e)
  process.exitCode = 1
})
