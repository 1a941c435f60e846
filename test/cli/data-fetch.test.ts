import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { removeCity, tinyCity } from "../support/tiny-city.ts"
import { zipEntries, zipFolder } from "../support/zip.ts"

const ROOT = path.resolve(import.meta.dirname, "../..")
const BIN = path.join(ROOT, "bin/virl.mjs")
const root = fs.mkdtempSync(path.join(os.tmpdir(), "virl-fetch-"))

/**
 * The hub on loopback: the tree API lists the two zips with their sha256, `resolve` redirects to
 * a storage URL on another origin (localhost instead of 127.0.0.1) that honours Range requests —
 * and can drop a connection half-way or serve damaged bytes once.
 */
const zips: Record<string, Buffer> = {}
const requests: Array<{ url: string; range?: string; auth?: string; host?: string }> = []
let cutNext: number | undefined
let corruptNext = false
let port = 0
const server = http.createServer((req, res) => {
  const url = req.url ?? ""
  requests.push({
    url,
    ...(req.headers.range ? { range: req.headers.range } : {}),
    ...(req.headers.authorization ? { auth: req.headers.authorization } : {}),
    host: req.headers.host ?? ""
  })
  if (url === "/api/datasets/tianzhechu/SFTvsRL_Data/tree/main/VIRL_routes") {
    res.writeHead(200, { "content-type": "application/json" })
    return res.end(
      JSON.stringify(
        Object.entries(zips).map(([name, bytes]) => ({
          type: "file",
          path: `VIRL_routes/${name}`,
          size: bytes.length,
          lfs: { oid: createHash("sha256").update(bytes).digest("hex"), size: bytes.length, pointerSize: 134 }
        }))
      )
    )
  }
  const resolve = /^\/datasets\/tianzhechu\/SFTvsRL_Data\/resolve\/main\/VIRL_routes\/(.+)$/.exec(url)
  if (resolve !== null) {
    res.writeHead(302, { location: `http://localhost:${port}/storage/${resolve[1]}` })
    return res.end()
  }
  const stored = /^\/storage\/(.+)$/.exec(url)
  if (stored !== null && zips[stored[1]] !== undefined) {
    let bytes = zips[stored[1]]
    if (corruptNext) {
      corruptNext = false
      bytes = Buffer.from(bytes)
      bytes[bytes.length >> 1] ^= 0xff
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "")
    const from = range === null ? 0 : Number(range[1])
    res.writeHead(range === null ? 200 : 206, { "content-length": bytes.length - from, "accept-ranges": "bytes" })
    if (cutNext !== undefined) {
      // the connection drops after `cutNext` bytes
      const n = cutNext
      cutNext = undefined
      res.write(bytes.subarray(from, from + n), () => res.destroy())
      return
    }
    return res.end(bytes.subarray(from))
  }
  res.writeHead(404)
  res.end()
})

let nyc = ""
let sf = ""
beforeAll(async () => {
  nyc = await tinyCity("nyc", 3)
  sf = await tinyCity("sf", 2)
  zips["nyc_1k_routes.zip"] = zipFolder(nyc, "nyc_1k_routes")
  zips["VLN_mini.zip"] = zipFolder(sf, "VLN_mini")
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  port = (server.address() as AddressInfo).port
}, 60_000)
beforeEach(() => {
  requests.length = 0
})
afterAll(() => {
  server.closeAllConnections()
  server.close()
  removeCity(nyc)
  removeCity(sf)
  fs.rmSync(root, { recursive: true, force: true })
})

const virl = (args: string[], env: Record<string, string> = {}) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, HF_ENDPOINT: `http://127.0.0.1:${port}`, HF_TOKEN: "", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += String(d)))
    child.stderr.on("data", (d) => (stderr += String(d)))
    child.on("exit", (status) => resolve({ status, stdout, stderr }))
  })

describe("virl data fetch sftvsrl", () => {
  it("continues an interrupted download, checks and unzips the routes, and arranges them for VIRL_DATASETS", async () => {
    const out = path.join(root, "data")
    cutNext = 2000
    const first = await virl(["data", "fetch", "sftvsrl", "--out", out, "--parallel", "1"])
    expect(first.status).toBe(1)
    expect(first.stderr).toMatch(/2000 bytes kept in .*\.zip\.part, run the same command to continue/)
    const second = await virl(["data", "fetch", "sftvsrl", "--out", out, "--parallel", "1"])
    expect(second.status, second.stderr + second.stdout).toBe(0)
    // the interrupted file asked for what it lacked
    expect(requests.filter((r) => r.url.startsWith("/storage/")).map((r) => r.range)).toContain("bytes=2000-")
    expect(second.stdout).toMatch(/nyc-train: 3 routes, \d+ panoramas, 0 problems/)
    expect(second.stdout).toMatch(/sf: 2 routes, \d+ panoramas, 0 problems/)
    expect(second.stdout).toContain(`VIRL_DATASETS=${out} npx virl run experiments/sft_vs_rl.ts`)
    for (const [link, source] of [["nyc-train", nyc], ["nyc-eval", nyc], ["sf", sf]] as const) {
      expect(fs.readFileSync(path.join(out, link, "route_infos.json"))).toEqual(fs.readFileSync(path.join(source, "route_infos.json")))
    }
    // the arranged folder runs: the oracle on the paper's in-distribution and visual-OOD suites
    const evaluated = await virl(["eval", "--policy", "oracle", "--suite", "indist,visual-ood", "--json", "--eval_config.num_traj=2"], { VIRL_DATASETS: out })
    expect(evaluated.status, evaluated.stderr).toBe(0)
    const metrics = evaluated.stdout.trim().split("\n").slice(-2).map((l) => JSON.parse(l))
    expect(metrics.map((m) => m.per_step_accuracy)).toEqual([1, 1])

    // again: nothing is downloaded twice
    requests.length = 0
    const third = await virl(["data", "fetch", "sftvsrl", "--out", out])
    expect(third.status).toBe(0)
    expect(third.stdout).toMatch(/0 downloaded, 2 already there/)
    expect(requests.filter((r) => r.url.startsWith("/storage/"))).toEqual([])
  }, 120_000)

  it("names a corrupt download and fetches it again; sends HF_TOKEN to the hub, not to the storage it redirects to", async () => {
    const out = path.join(root, "corrupt")
    corruptNext = true
    const r = await virl(["data", "fetch", "sftvsrl", "--out", out, "--parallel", "1"], { HF_TOKEN: "hf_secret" })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/nyc_1k_routes\.zip: corrupt download \(sha256 [0-9a-f]{64}, the hub lists [0-9a-f]{64}\); deleted: fetching it again/)
    expect(requests.filter((q) => q.url.startsWith("/api/") || q.url.startsWith("/datasets/")).every((q) => q.auth === "Bearer hf_secret")).toBe(true)
    expect(requests.filter((q) => q.url.startsWith("/storage/")).every((q) => q.auth === undefined)).toBe(true)
  }, 120_000)

  it("reads the token huggingface-cli login saved (HF_HOME/token) when HF_TOKEN is unset", async () => {
    const out = path.join(root, "saved-token")
    const hfHome = path.join(root, "hf-home")
    fs.mkdirSync(hfHome, { recursive: true })
    fs.writeFileSync(path.join(hfHome, "token"), "hf_saved\n")
    requests.length = 0
    const r = await virl(["data", "fetch", "sftvsrl", "--out", out], { HF_HOME: hfHome })
    expect(r.status, r.stderr).toBe(0)
    const hub = requests.filter((q) => q.url.startsWith("/api/") || q.url.startsWith("/datasets/"))
    expect(hub.length).toBeGreaterThan(0)
    expect(hub.every((q) => q.auth === "Bearer hf_saved")).toBe(true)
  }, 120_000)

  it("never replaces a folder it did not link: real data under --out is left as it is, and named", async () => {
    const out = path.join(root, "existing")
    const mine = path.join(out, "nyc-train")
    fs.mkdirSync(mine, { recursive: true })
    fs.writeFileSync(path.join(mine, "route_infos.json"), "my own routes")
    const r = await virl(["data", "fetch", "sftvsrl", "--out", out])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain(`${mine} exists and is not a link this command made`)
    expect(fs.readFileSync(path.join(mine, "route_infos.json"), "utf8")).toBe("my own routes")
    // its own links it replaces: a second fetch into a folder it arranged succeeds
    fs.rmSync(mine, { recursive: true })
    expect((await virl(["data", "fetch", "sftvsrl", "--out", out])).status).toBe(0)
    expect((await virl(["data", "fetch", "sftvsrl", "--out", out])).status).toBe(0)
    expect(fs.lstatSync(mine).isSymbolicLink()).toBe(true)
  }, 180_000)

  it("refuses an archive entry that would land outside its folder", async () => {
    const out = path.join(root, "slip")
    const saved = zips["VLN_mini.zip"]
    zips["VLN_mini.zip"] = zipEntries([{ name: "../../escaped.txt", data: Buffer.from("x") }])
    try {
      const r = await virl(["data", "fetch", "sftvsrl", "--out", out])
      expect(r.status).toBe(1)
      expect(r.stderr).toMatch(/VLN_mini\.zip: (entry "\.\.\/\.\.\/escaped\.txt" would be written outside|invalid relative path: \.\.\/\.\.\/escaped\.txt)/)
      expect(fs.existsSync(path.join(root, "escaped.txt"))).toBe(false)
    } finally {
      zips["VLN_mini.zip"] = saved
    }
  }, 60_000)
})
