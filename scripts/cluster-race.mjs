// Two `virl runner`s started at the same moment on a fresh PostgreSQL database, N times (default 5):
// how often both become healthy. Before virl made @effect/cluster's tables under a lock, one of the
// two lost the tables' CREATE race in 3 of 25 rounds; since, none of 60.
//   node scripts/cluster-race.mjs 25
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { postgresBin, startPostgres, stopPostgres } from "./postgres.mjs"
const PORT = 5499
const url = startPostgres({ port: PORT, password: "virl" })
const psql = (db, sql) => spawnSync(path.join(postgresBin(), "psql"), [url.replace(/\/virl$/, `/${db}`), "-tAc", sql], { encoding: "utf8" }).stdout.trim()
const BIN = path.resolve(import.meta.dirname, "../bin/virl.mjs")
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "virl-race-"))
const rounds = Number(process.argv[2] ?? 5)
let ok = 0
for (let k = 0; k < rounds; k++) {
  psql("postgres", "DROP DATABASE IF EXISTS race WITH (FORCE)")
  psql("postgres", "CREATE DATABASE race")
  const db = url.replace(/\/virl$/, "/race")
  const logs = []
  const kids = [0, 1].map((i) => {
    const f = path.join(tmp, `runner-${i}.log`)
    logs.push(f)
    const fd = fs.openSync(f, "w")
    return spawn(process.execPath, [BIN, "runner", "--db", db, "--port", String(36100 + i), "--failover", "5", "--out", path.join(tmp, `out-${i}`)], { stdio: ["ignore", fd, fd] })
  })
  let healthy = "0"
  for (let i = 0; i < 150 && healthy !== "2"; i++) {
    await new Promise((r) => setTimeout(r, 200))
    healthy = psql("race", "SELECT count(*) FROM cluster_runners WHERE healthy") || "0"
  }
  for (const c of kids) c.kill("SIGKILL")
  await new Promise((r) => setTimeout(r, 500))
  if (healthy === "2") ok++
  else console.log(`round ${k}: ${healthy} healthy\n` + logs.map((f) => fs.readFileSync(f, "utf8").split("\n").slice(0, 6).join("\n")).join("\n--\n"))
}
console.log(`${ok}/${rounds} rounds: both healthy`)
stopPostgres({ port: PORT })
fs.rmSync(tmp, { recursive: true, force: true })
