/**
 * `npm run bench` (second part): how fast synthetic cities are made. Route planning in routes
 * per second; panorama rendering + JPEG encoding in panoramas per second, in process (the
 * baseline) and on worker threads, side by side; and the wall time of the whole default dataset.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ensureDefault } from "../src/plugins/dataset/synth/default.ts"
import { planCity, synthesize } from "../src/plugins/dataset/synth/generate.ts"

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "virl-bench-synth-"))

const main = async () => {
  console.log(`synthetic cities — ${os.cpus().length} cores, Node ${process.version}`)
  for (const city of ["nyc", "sf"]) {
    const t = performance.now()
    const plan = planCity({ city, seed: 0, splits: [{ dir: "x", routes: 2000 }] })
    const seconds = (performance.now() - t) / 1000
    console.log(`  ${city}: planned ${plan.splits[0].routes.length} routes in ${seconds.toFixed(2)} s (${(2000 / seconds).toFixed(0)} routes/s)`)
  }
  const rates: Record<string, number> = {}
  for (const [label, threads] of [["in process", 1], ["worker threads", undefined]] as const) {
    const dir = path.join(scratch, `nyc-${label.replace(" ", "-")}`)
    const report = await Effect.runPromise(synthesize({ city: "nyc", seed: 0, splits: [{ dir, routes: 64 }], ...(threads === undefined ? {} : { threads }) }))
    rates[label] = report.panoramas / report.seconds.render
    console.log(
      `  nyc 64 routes, 1024×512, ${label}: ${report.panoramas} panoramas in ${report.seconds.render.toFixed(1)} s = ${rates[label].toFixed(1)} panoramas/s`
    )
  }
  console.log(`  worker threads / in process: ${(rates["worker threads"] / rates["in process"]).toFixed(2)}×`)
  const t = performance.now()
  const paths = await Effect.runPromise(ensureDefault({ root: path.join(scratch, "default") }))
  const seconds = (performance.now() - t) / 1000
  const size = (dir: string) => fs.readdirSync(path.join(dir, "street_views")).reduce((s, f) => s + fs.statSync(path.join(dir, "street_views", f)).size, 0)
  const count = (dir: string) => fs.readdirSync(path.join(dir, "street_views")).filter((f) => f.endsWith(".jpg")).length
  console.log(`  default dataset (nyc-train + nyc-eval + sf) from scratch: ${seconds.toFixed(1)} s`)
  for (const [name, dir] of [["nyc-train", paths.train], ["nyc-eval", paths.eval], ["sf", paths.visualOod]]) {
    console.log(`    ${name}: ${count(dir)} panoramas, ${(size(dir) / 1e6).toFixed(1)} MB`)
  }
}

main()
  .catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
  .finally(() => fs.rmSync(scratch, { recursive: true, force: true }))
