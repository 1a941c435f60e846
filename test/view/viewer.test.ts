/// <reference lib="dom" />
import { Effect } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { type Browser, chromium, type Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { writeReport } from "../../src/app/report.ts"
import { runExperiment } from "../../src/app/run.ts"
import { indist, ruleOod, suiteLabel } from "../../src/app/suites.ts"
import { exportStatic, handler, hostAllowed, safeFile, serve } from "../../src/app/view/server.ts"
import { experiment } from "../../src/core/experiment.ts"
import { removeCity, tinyCity } from "../support/tiny-city.ts"
import { CHROMIUM, skipWithout } from "../support/system-packages.ts"

/**
 * `virl view` in a real browser: Debian's Chromium, headless, driven by playwright-core.
 * Screenshots go to test-output/viewer/ for a person to look at.
 */
const SHOTS = path.resolve(import.meta.dirname, "../../test-output/viewer")
const HOSTILE = `<script>window.PWNED = 1</script><img src=x onerror="window.PWNED = 2">{"action": "forward()"}`

let city = ""
let browser: Browser
const out = fs.mkdtempSync(path.join(os.tmpdir(), "virl-view-"))
const run = path.join(out, "run")
const servers: http.Server[] = []

const tiny = experiment({
  name: "tiny_view",
  seeds: [1],
  suites: ["indist", "rule-ood"],
  evaluations: 1,
  arms: [
    { name: "sft", recipe: { kind: "sft" } },
    { name: "rl", recipe: { kind: "ppo", from: "sft" } }
  ],
  config: {
    "sft_config.routes": 4,
    "sft_config.epochs": 3,
    num_steps: 32,
    num_updates: 1,
    num_processes: 4,
    "eval_config.num_traj": 4,
    "policy_config.embedding": 32,
    "policy_config.hidden": 64,
    "policy_config.patch_features": 16
  }
})

const start = async (dir: string) => {
  const server = http.createServer(handler(dir))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  servers.push(server)
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** A raw GET (fetch would normalise `..` away before sending it). */
const rawGet = (base: string, rawPath: string) =>
  new Promise<number>((resolve, reject) => {
    const u = new URL(base)
    const req = http.request({ host: u.hostname, port: u.port, path: rawPath, method: "GET" }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on("error", reject)
    req.end()
  })

// the browser's tests skip where Chromium is missing (and fail instead in CI); the rest run anyway
const noBrowser = skipWithout("chromium", "the viewer's browser test")

beforeAll(async () => {
  fs.mkdirSync(SHOTS, { recursive: true })
  city = await tinyCity("nyc", 4)
  const datasets = { root: city, train: city, eval: city, visualOod: city }
  await Effect.runPromise(runExperiment(tiny, { out: run, datasets }))
  await writeReport(run, tiny.name, ["sft", "rl"], [indist, ruleOod].map(suiteLabel), ["sft", "rl"], { rl: "sft" }, [1])
  fs.writeFileSync(path.join(run, "experiment.json"), JSON.stringify({ name: tiny.name, arms: ["sft", "rl"], suites: tiny.suites }))
  // a model that writes HTML: the page must show it as text
  const traces = path.join(run, "seed-1", "rl", "eval-logs", "indist-step1.episodes.jsonl")
  const lines = fs.readFileSync(traces, "utf8").trim().split("\n").map((l) => JSON.parse(l))
  lines[0].steps[0].output = HOSTILE
  fs.writeFileSync(traces, lines.map((l) => JSON.stringify(l)).join("\n") + "\n")
  if (noBrowser) return
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync"
    ]
  })
}, 240_000)

afterAll(async () => {
  await browser?.close()
  for (const s of servers) s.close()
  removeCity(city)
  fs.rmSync(out, { recursive: true, force: true })
})

const openFailedEpisode = async (page: Page) => {
  await page.selectOption("#f-outcome", "failure")
  const rows = page.locator("#list tbody tr")
  expect(await rows.count()).toBeGreaterThan(0)
  await rows.first().click()
  await page.locator(".panel .body dl.facts").first().waitFor()
}

describe.skipIf(noBrowser)("virl view in Chromium", () => {
  it("shows the table and plots, filters to a failed episode and steps through it", async () => {
    const base = await start(run)
    const page = await browser.newPage({ viewport: { width: 1500, height: 1100 } })
    const errors: string[] = []
    page.on("pageerror", (e) => errors.push(String(e)))
    await page.goto(`${base}/`)
    await expect.poll(() => page.locator("#tables table").count()).toBeGreaterThan(0)
    expect(await page.locator("#tables").innerText()).toMatch(/sft[\s\S]*rl/)
    expect(await page.locator("#plots img").count()).toBeGreaterThan(0)
    await page.screenshot({ path: path.join(SHOTS, "1-results.png"), fullPage: true })

    await openFailedEpisode(page)
    const panel = page.locator(".panel").first()
    // a failed episode opens at its first refused answer
    expect(await panel.locator(".verdict").innerText()).not.toMatch(/^Correct/)
    expect(await panel.locator(".ground-truth").innerText()).toMatch(/\(\)$|\)$/)
    expect((await panel.locator("pre.output").innerText()).length).toBeGreaterThan(0)
    expect(await panel.locator("ol.instructions li.current").count()).toBe(1)
    expect(await panel.locator("svg.map circle.here").count()).toBe(1)
    const frameLoaded = await panel.locator("img.frame").evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)
    expect(frameLoaded).toBe(true)
    await page.screenshot({ path: path.join(SHOTS, "2-failed-episode.png"), fullPage: true })

    // step through it from the start
    const position = () => panel.locator(".position").innerText()
    const total = Number((await position()).split("/")[1])
    await panel.locator("button.prev").evaluate((b: HTMLButtonElement) => Array.from({ length: 50 }, () => b.click()))
    expect(await position()).toBe(`answer 1 / ${total}`)
    if (total > 1) {
      await panel.locator("button.next").click()
      expect(await position()).toBe(`answer 2 / ${total}`)
    }
    // side by side: the same route under the other arm
    await page.selectOption("#compare", { index: 1 })
    await expect.poll(() => page.locator(".panel").count()).toBe(2)
    const titles = await page.locator(".panel h3").allInnerTexts()
    expect(titles[0]!.split("·")[0]!.trim()).not.toBe(titles[1]!.split("·")[0]!.trim())
    expect(titles[0]!.match(/route (\d+)/)![1]).toBe(titles[1]!.match(/route (\d+)/)![1])
    await page.screenshot({ path: path.join(SHOTS, "3-side-by-side.png"), fullPage: true })
    expect(errors).toEqual([])
  }, 60_000)

  it("keeps its state in the URL: a link opens the filters, an episode and a step", async () => {
    const base = await start(run)
    const page = await browser.newPage()
    const errors: string[] = []
    page.on("pageerror", (e) => errors.push(String(e)))
    // the first listed episode at its first step
    await page.goto(`${base}/index.html#episode=1&step=1`)
    const panel = page.locator(".panel").first()
    await expect.poll(() => panel.locator(".position").count()).toBe(1)
    expect(await panel.locator(".position").innerText()).toMatch(/^answer 1 \//)
    expect(await page.locator("#list tbody tr.selected").getAttribute("data-index")).toBe(
      await page.locator("#list tbody tr").first().getAttribute("data-index")
    )
    // choosing and stepping write the link; the link opens the same place in a fresh page
    await page.selectOption("#f-arm", "rl")
    await page.selectOption("#f-suite", "indist")
    await page.locator("#list tbody tr").nth(1).click()
    const total = Number((await panel.locator(".position").innerText()).split("/")[1])
    await panel.locator("button.prev").evaluate((b: HTMLButtonElement) => Array.from({ length: 50 }, () => b.click()))
    if (total > 1) await panel.locator("button.next").click()
    const link = new URL(page.url()).hash
    expect(link).toBe(`#arm=rl&suite=indist&point=final&episode=2&step=${total > 1 ? 2 : 1}`)
    const again = await browser.newPage()
    await again.goto(`${base}/${link}`)
    const opened = again.locator(".panel").first()
    await expect.poll(() => opened.locator(".position").count()).toBe(1)
    expect(await opened.locator("h3").innerText()).toMatch(/^rl · indist/)
    expect(await opened.locator(".position").innerText()).toBe(`answer ${total > 1 ? 2 : 1} / ${total}`)
    expect(await again.locator("#f-arm").inputValue()).toBe("rl")
    expect(errors).toEqual([])
  }, 30_000)

  it("shows a model's HTML as text and runs none of it", async () => {
    const base = await start(run)
    const page = await browser.newPage()
    await page.goto(`${base}/`)
    await page.selectOption("#f-arm", "rl")
    await page.selectOption("#f-suite", "indist")
    await page.locator("#list tbody tr").first().click()
    const panel = page.locator(".panel").first()
    await panel.locator("button.prev").evaluate((b: HTMLButtonElement) => Array.from({ length: 50 }, () => b.click()))
    expect(await panel.locator("pre.output").innerText()).toBe(HOSTILE)
    expect(await page.evaluate(() => (window as unknown as { PWNED?: number }).PWNED)).toBeUndefined()
  }, 30_000)

  it("says what is missing for a partial, an older or a missing run folder — never a blank page", async () => {
    const partial = path.join(out, "partial")
    fs.cpSync(run, partial, { recursive: true })
    fs.rmSync(path.join(partial, "results.md"))
    fs.rmSync(path.join(partial, "experiment.json"))
    // an older virl: evaluation logs without episode traces
    for (const f of fs.readdirSync(path.join(partial, "seed-1", "sft", "eval-logs"))) {
      if (f.endsWith(".episodes.jsonl")) fs.rmSync(path.join(partial, "seed-1", "sft", "eval-logs", f))
    }
    fs.appendFileSync(path.join(partial, "seed-1", "rl", "eval-logs", "rule-ood-step1.episodes.jsonl"), '{"format": "virl-episodes", "vers')
    const page = await browser.newPage()
    await page.goto(`${await start(partial)}/`)
    const problems = await page.locator("#problem-list").innerText()
    expect(problems).toMatch(/results\.md is missing/)
    expect(problems).toMatch(/experiment\.json is missing/)
    expect(problems).toMatch(/have no episode traces/)
    expect(problems).toMatch(/damaged line/)
    expect(await page.locator("#list tbody tr").count()).toBeGreaterThan(0)
    await page.screenshot({ path: path.join(SHOTS, "4-partial-run.png"), fullPage: true })

    await page.goto(`${await start(path.join(out, "no-such-run"))}/`)
    expect(await page.locator("#problem-list").innerText()).toMatch(/does not exist/)
  }, 30_000)

  it("exports static files that open from disk", async () => {
    const site = path.join(out, "site")
    await Effect.runPromise(exportStatic(run, site))
    const page = await browser.newPage()
    await page.goto(`file://${path.join(site, "index.html")}`)
    await openFailedEpisode(page)
    const frameLoaded = await page.locator(".panel img.frame").first().evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)
    expect(frameLoaded).toBe(true)
    expect(fs.existsSync(path.join(site, "seed-1"))).toBe(false)
  }, 30_000)
})

/** `virl view`'s own server on 127.0.0.1 (Host checks on). */
const serveRun = async (dir: string) => {
  const server = await Effect.runPromise(serve(dir, { port: 0, host: "127.0.0.1" }))
  servers.push(server)
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** A raw GET with a Host header of one's choosing; the status and the headers. */
const getWithHost = (base: string, rawPath: string, host: string) =>
  new Promise<{ status: number; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    const u = new URL(base)
    const req = http.request({ host: u.hostname, port: u.port, path: rawPath, method: "GET", headers: { host } }, (res) => {
      res.resume()
      resolve({ status: res.statusCode ?? 0, headers: res.headers })
    })
    req.on("error", reject)
    req.end()
  })

describe("virl view answers its own address only, and no other page can read it", () => {
  it("refuses a request whose Host is not its address (DNS rebinding) and marks every answer same-origin", async () => {
    const base = await serveRun(run)
    const port = new URL(base).port
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
      const r = await getWithHost(base, "/data.js", host)
      expect([host, r.status]).toEqual([host, 200])
      expect(r.headers["cross-origin-resource-policy"]).toBe("same-origin")
    }
    for (const host of [`evil.example:${port}`, "127.0.0.1:1", `evil.example`, `127.0.0.1.evil.example:${port}`]) {
      const r = await getWithHost(base, "/data.js", host)
      expect([host, r.status]).toEqual([host, 421])
      expect(r.headers["cross-origin-resource-policy"]).toBe("same-origin")
    }
    expect(hostAllowed(`my-box:8000`, 8000, "my-box")).toBe(true)
    expect(hostAllowed(`my-box.attacker.example:8000`, 8000, "my-box")).toBe(false)
  })

  it("answers 500 when an answer fails, and serves the next request", async () => {
    const copy = path.join(out, "vanishing")
    fs.cpSync(run, copy, { recursive: true })
    const results = path.join(copy, "results.md")
    const saved = fs.readFileSync(results)
    // a file replaced by a folder between the listing and the read: reading it throws
    fs.rmSync(results)
    fs.mkdirSync(results)
    const base = await serveRun(copy)
    const failed = await fetch(`${base}/data.js`)
    expect(failed.status).toBe(500)
    expect(await failed.text()).toMatch(/cannot answer \/data\.js: EISDIR/)
    expect((await fetch(`${base}/`)).status).toBe(200)
    fs.rmSync(results, { recursive: true })
    fs.writeFileSync(results, saved)
    expect((await fetch(`${base}/data.js`)).status).toBe(200)
  })
})

describe.skipIf(noBrowser)("virl view against a page of another origin", () => {
  it("a page served from 127.0.0.2 cannot read the run's data through a script tag", async () => {
    const base = await serveRun(run)
    const foreign = http.createServer((_, res) => {
      res.writeHead(200, { "Content-Type": "text/html" })
      res.end(`<!doctype html><script src="${base}/data.js"></script><script>window.DONE = true</script>`)
    })
    await new Promise<void>((resolve) => foreign.listen(0, "127.0.0.2", resolve))
    servers.push(foreign)
    const page = await browser.newPage()
    try {
      const refused: string[] = []
      page.on("requestfailed", (r) => refused.push(`${r.url()} ${r.failure()?.errorText ?? ""}`))
      await page.goto(`http://127.0.0.2:${(foreign.address() as AddressInfo).port}/`)
      await page.waitForFunction(() => (window as unknown as { DONE?: boolean }).DONE === true)
      expect(await page.evaluate(() => typeof (window as unknown as { VIRL_INDEX?: unknown }).VIRL_INDEX)).toBe("undefined")
      expect(refused.some((r) => r.includes("/data.js") && /BLOCKED_BY_RESPONSE|blocked/i.test(r))).toBe(true)
      // while the page of its own origin reads it
      await page.goto(`${base}/`)
      expect(await page.evaluate(() => typeof (window as unknown as { VIRL_INDEX?: unknown }).VIRL_INDEX)).toBe("object")
    } finally {
      await page.close()
    }
  }, 60_000)
})

describe("virl view serves only the run's plots and frames", () => {
  it("refuses .., encoded traversal, symlinks out of the run folder and everything else", async () => {
    const frames = path.join(run, "frames")
    const secret = path.join(out, "secret.txt")
    fs.writeFileSync(secret, "secret")
    fs.symlinkSync(secret, path.join(frames, "link.jpg"))
    const frame = fs.readdirSync(frames).find((f) => f.endsWith(".jpg") && f !== "link.jpg")!
    const base = await start(run)
    expect(await rawGet(base, `/frames/${frame}`)).toBe(200)
    expect(await rawGet(base, "/plots/indist.png")).toBe(200)
    for (
      const p of [
        "/frames/../experiment.json",
        "/frames/%2e%2e/experiment.json",
        "/frames/..%2fexperiment.json",
        "/frames/%2E%2E%2F%2E%2E%2Fsecret.txt",
        "/plots/..%5c..%5csecret.txt",
        "/frames/link.jpg",
        "/experiment.json",
        "/seed-1/rl/checkpoint/weights.bin",
        "/frames/%00.jpg",
        "/episodes/..%2f..%2fsecret.js"
      ]
    ) {
      expect([p, await rawGet(base, p)]).toEqual([p, 404])
    }
    expect(safeFile(run, `/frames/${frame}`, ["frames"])).toBeDefined()
    expect(safeFile(run, "/frames/link.jpg", ["frames"])).toBeUndefined()
  })
})

describe("the virl view command", () => {
  const BIN = path.resolve(import.meta.dirname, "../../bin/virl.mjs")
  it("listens on 127.0.0.1 by default and serves the run's data", async () => {
    const child = spawn(process.execPath, [BIN, "view", run, "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] })
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let text = ""
        child.stdout.on("data", (d) => {
          text += String(d)
          const m = /http:\/\/[^\s]+\//.exec(text)
          if (m !== null) resolve(m[0])
        })
        child.on("exit", (code) => reject(new Error(`virl view exited with ${code}`)))
      })
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
      const data = await (await fetch(`${url}data.js`)).text()
      expect(data).toMatch(/^window\.VIRL_INDEX = \{"name":"tiny_view"/)
    } finally {
      child.kill("SIGTERM")
    }
  })

  it("writes static files with --out and names what is missing", () => {
    const site = path.join(out, "site-cli")
    const r = spawnSync(process.execPath, [BIN, "view", path.join(out, "no-such-run"), "--out", site], { encoding: "utf8" })
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/missing: the run folder .* does not exist/)
    expect(fs.existsSync(path.join(site, "index.html"))).toBe(true)
  })
})
