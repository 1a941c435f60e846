/**
 * `npm run bench`: visual-observation steps per second at resolution 1200 and 224, one episode
 * and N at once, on 2048×1024 panoramas; and, where /usr/bin/python3 has numpy, OpenCV and
 * Pillow, the reference's pipeline on the same steps in the same run, as a ratio. Like with like:
 * medians on both sides, both with their default threading on the same cores, each environment
 * step counted once (a retry served from the cache is reported on its own line).
 */
import { Effect } from "effect"
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import sharp from "sharp"
import { load, readRotation } from "../src/plugins/dataset/virl-routes.ts"
import { defaultConfig } from "../src/plugins/environment/virl/config.ts"
import type { ViewPose } from "../src/domain/virl/episode.ts"
import { NavigationEnv } from "../src/plugins/environment/virl/navigation.ts"
import { StreetViewRenderer } from "../src/domain/virl/street-view.ts"
import { PythonRandom } from "../src/plugins/random/python-random.ts"
import { processReward } from "../src/plugins/reward/process.ts"

const FIXTURE = path.resolve(import.meta.dirname, "../test/fixtures/virl-reference/dataset")
const BENCH_DATA = path.resolve(import.meta.dirname, "../.cache/bench-2048")
const PANO_WIDTH = 2048
const PANO_HEIGHT = 1024
const RESOLUTIONS = [1200, 224]
const EPISODES = Number(process.env.BENCH_EPISODES ?? 4)
const BATCH = Number(process.env.BENCH_BATCH ?? 8)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)

/** The fixture city with its panoramas upscaled to the real data's 2048×1024. */
const prepareDataset = async (): Promise<string> => {
  const marker = path.join(BENCH_DATA, ".ready")
  if (fs.existsSync(marker)) return BENCH_DATA
  fs.rmSync(BENCH_DATA, { recursive: true, force: true })
  fs.mkdirSync(path.join(BENCH_DATA, "street_views"), { recursive: true })
  for (const f of ["route_infos.json", "gps_pano_mapping.pkl"]) fs.copyFileSync(path.join(FIXTURE, f), path.join(BENCH_DATA, f))
  const views = path.join(FIXTURE, "street_views")
  for (const f of fs.readdirSync(views)) {
    const target = path.join(BENCH_DATA, "street_views", f)
    if (f.endsWith(".jpg")) {
      await sharp(path.join(views, f)).resize(PANO_WIDTH, PANO_HEIGHT, { kernel: "cubic" }).jpeg({ quality: 90 }).toFile(target)
    } else fs.copyFileSync(path.join(views, f), target)
  }
  fs.writeFileSync(marker, "")
  return BENCH_DATA
}

/** The poses an oracle walks through on `episodes` routes. */
const oraclePoses = (env: NavigationEnv, episodes: number): ViewPose[] => {
  const poses: ViewPose[] = []
  for (let e = 0; e < episodes; e++) {
    env.reset({ route_idx: e % env.dataset.routes.length })
    poses.push(env.episode.pose())
    for (;;) {
      const step = env.step(JSON.stringify({ action: env.episode.groundTruth }))
      if (step.terminated || step.truncated) break
      poses.push(env.episode.pose())
    }
  }
  return poses
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const main = async () => {
  const root = await prepareDataset()
  const dataset = await Effect.runPromise(load(root, { panoramaCacheSize: 0 }))
  console.log(`bench: ${os.cpus().length} cores, node ${process.version}, panoramas ${PANO_WIDTH}×${PANO_HEIGHT}`)
  const hasReference = spawnSync("/usr/bin/python3", ["-c", "import numpy, cv2, PIL"], { stdio: "ignore" }).status === 0
  for (const resolution of RESOLUTIONS) {
    const config = defaultConfig({ resolution, language_only: false })
    const env = new NavigationEnv(dataset, config, new PythonRandom(12), processReward)
    const poses = oraclePoses(env, EPISODES)

    // One episode, nothing cached between steps: every step decodes and projects, as the reference
    // does. In ROUNDS rounds, each ours then the reference's on the same steps, so that a slow
    // spell of the machine falls on both sides; the headline is the median over all steps of
    // each side, and the ratio of each round shows the spread.
    const probe = new StreetViewRenderer(dataset, config, 0)
    const referenceSteps = hasReference
      ? await Effect.runPromise(
        Effect.forEach(poses, (pose) =>
          // the panorama's id and north rotation (its metadata), without decoding it
          probe.panoramaAt(pose).pipe(
            Effect.flatMap((panoId) =>
              Effect.map(readRotation(path.join(root, "street_views", `${panoId}.metadata.json`)), (rotation) => ({
                jpg: path.join(root, "street_views", `${panoId}.jpg`),
                rotation,
                heading: pose.heading
              }))
            )
          ))
      )
      : []
    const cold: number[] = []
    const reference: number[] = []
    const roundRatios: number[] = []
    for (let round = 0; round < ROUNDS; round++) {
      const ours: number[] = []
      for (const pose of poses) {
        const renderer = new StreetViewRenderer(dataset, config, 0)
        const start = performance.now()
        await Effect.runPromise(renderer.render(pose))
        ours.push(performance.now() - start)
      }
      cold.push(...ours)
      if (!hasReference) continue
      const out = execFileSync("/usr/bin/python3", [path.join(import.meta.dirname, "reference_pipeline.py")], {
        input: JSON.stringify({ resolution, steps: referenceSteps }),
        maxBuffer: 1 << 26
      })
      const theirs: number[] = JSON.parse(out.toString()).ms_per_step
      reference.push(...theirs)
      roundRatios.push(median(theirs) / median(ours))
    }
    // One episode as the environment runs it, caches and prefetch on: each rail point's first
    // render (the step), and a retry at the same point (verify_iter 2) timed on its own.
    const cachedDataset = await Effect.runPromise(load(root))
    const renderer = new StreetViewRenderer(cachedDataset, config)
    const asRun: number[] = []
    const retries: number[] = []
    for (const [i, pose] of poses.entries()) {
      const t0 = performance.now()
      await Effect.runPromise(renderer.render(pose))
      // as the environment does: the next rail point starts rendering, and the one after it
      // decoding, while the answer is checked
      await Effect.runPromise(renderer.prefetch(poses.slice(i + 1, i + 3)))
      const t1 = performance.now()
      await Effect.runPromise(renderer.render(pose))
      asRun.push(t1 - t0)
      retries.push(performance.now() - t1)
    }
    const cachedMs = median(asRun)
    const retryMs = median(retries)
    // N episodes at once: the batch's renders of one lock-step issued together.
    const batchDataset = await Effect.runPromise(load(root))
    const batchRenderer = new StreetViewRenderer(batchDataset, config)
    const batchStart = performance.now()
    for (let i = 0; i < poses.length; i += BATCH) {
      await Effect.runPromise(Effect.forEach(poses.slice(i, i + BATCH), (p) => batchRenderer.render(p), { concurrency: "unbounded" }))
    }
    // a throughput, not a latency: the batch's total time over its steps
    const batchMs = (performance.now() - batchStart) / poses.length

    const referenceMs = hasReference ? median(reference) : undefined
    const coldMs = median(cold)
    console.log(
      [
        `resolution ${resolution}: ${poses.length} steps`,
        `  one episode, no cache     ${coldMs.toFixed(1)} ms/step  (${(1000 / coldMs).toFixed(1)} steps/s)`,
        `  one episode, as run       ${cachedMs.toFixed(1)} ms/step  (${(1000 / cachedMs).toFixed(1)} steps/s; caches and prefetch on, each point once)`,
        `  a retry at the same point ${retryMs.toFixed(2)} ms  (served from the grid cache)`,
        `  ${BATCH} episodes at once      ${batchMs.toFixed(1)} ms/step  (${(1000 / batchMs).toFixed(1)} steps/s)`,
        referenceMs === undefined
          ? "  reference pipeline        skipped (/usr/bin/python3 lacks numpy, OpenCV or Pillow: apt-get install python3-opencv python3-pil)"
          : `  reference pipeline        ${referenceMs.toFixed(1)} ms/step (median)  → virl/reference speed ${
            (referenceMs / coldMs).toFixed(2)
          }× uncached (headline; rounds ${roundRatios.map((r) => r.toFixed(2)).join(" / ")}), ${(referenceMs / cachedMs).toFixed(2)}× as run`
      ].join("\n")
    )
  }
}

main().catch((e) => {
  console.error(e)
  process.exitCode = 1
})
