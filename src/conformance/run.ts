import * as fs from "node:fs"
import { Effect } from "effect"
import * as path from "node:path"
import sharp from "sharp"
import type { RouteDataset } from "../core/dataset.ts"
import type { Waypoint } from "../core/rail.ts"
import { load } from "../plugins/dataset/virl-routes.ts"
import { Chat } from "../domain/virl/chat.ts"
import { defaultConfig } from "../plugins/environment/virl/config.ts"
import * as geo from "../domain/virl/geo.ts"
import { parseMilestones } from "../domain/virl/milestones.ts"
import { NavigationEnv } from "../plugins/environment/virl/navigation.ts"
import { type OutputKey, reMatch } from "../domain/virl/output-parsing.ts"
import { perspectiveView, type RgbImage } from "../domain/virl/projection.ts"
import { type PromptTemplate, templateFor } from "../domain/virl/prompt.ts"
import { StreetViewRenderer } from "../domain/virl/street-view.ts"
import { verdictMessage, verify } from "../domain/virl/verifier.ts"
import { PythonRandom } from "../plugins/random/python-random.ts"
import { processReward } from "../plugins/reward/process.ts"
import { type CaseResult, firstDifference, readCaseFile } from "./cases.ts"

/** Tolerances from the cases' README. */
const DISTANCE_TOLERANCE_M = 1e-6
const HEADING_TOLERANCE_DEG = 1e-9
const GEOCODE_TOLERANCE_DEG = 1e-9
export const IMAGE_MEAN_TOLERANCE = 4.0
export const IMAGE_OUTLIER_LEVEL = 24
export const IMAGE_OUTLIER_SHARE = 0.01

type Case = Record<string, any>

const outcome = (file: string, index: number, label: string, difference: string | undefined): CaseResult =>
  difference === undefined ? { file, index, label, ok: true } : { file, index, label, ok: false, detail: difference }

const guard = (file: string, index: number, label: string, check: () => string | undefined): CaseResult => {
  try {
    return outcome(file, index, label, check())
  } catch (e) {
    return { file, index, label, ok: false, detail: `threw: ${(e as Error).message ?? String(e)}` }
  }
}

const checkRandom = (c: Case): string | undefined => {
  const rng = new PythonRandom(BigInt(c.seed))
  for (const [i, op] of (c.ops as Case[]).entries()) {
    const value = op.op === "random" ? rng.random() : op.op === "randint" ? rng.randint(op.a, op.b) : rng.choiceIndex(op.n)
    if (value !== op.value) return `op ${i} (${op.op}): expected ${op.value}, got ${value}`
  }
  return undefined
}

const checkGeo = (c: Case): string | undefined => {
  if (c.headings !== undefined) return firstDifference(geo.viewHeadings(c.heading_list_of, c.fov, c.range), c.headings)
  return (
    firstDifference(geo.geodesicDistance(c.a, c.b), c.geodesic_m, DISTANCE_TOLERANCE_M, "geodesic_m") ??
      firstDifference(geo.haversineDistance(c.a, c.b), c.haversine_m, DISTANCE_TOLERANCE_M, "haversine_m") ??
      firstDifference(geo.headingBetween(c.a, c.b), c.heading_deg, HEADING_TOLERANCE_DEG, "heading_deg") ??
      firstDifference(geo.compassWord(c.heading_deg), c.direction_abs, 0, "direction_abs") ??
      firstDifference(geo.spatialRelation(c.agent_heading, c.heading_deg), c.spatial, 0, "spatial") ??
      firstDifference(geo.interpolate(c.a, c.b, 2, 5), c.interpolate_2_of_5, 0, "interpolate_2_of_5")
  )
}

const jsonValue = (value: unknown): unknown => (value instanceof Map ? Object.fromEntries(value) : value)

const checkReward = (c: Case): string | undefined => {
  const verdict = verify(c.raw_output, c.gt_action, c.gt_obs)
  const reward = processReward.step(verdict)
  const message = verdictMessage(verdict)
  // Where the reference raised, any legal verdict passes: docs/reference-deviations.md says which.
  if (c.reference_raises !== undefined) return Number.isFinite(reward) ? undefined : `no legal reward (${reward})`
  return firstDifference(reward, c.reward, 0, "reward") ?? firstDifference(message, c.message, 0, "message")
}

/** A rail point in the reference's dict form (interpolated points carry no relative_action without relocation). */
const railPoint = (point: Waypoint, absoluteAction: boolean, relocation: boolean) => ({
  geocode: [...point.geocode],
  heading: point.heading,
  gt_action: absoluteAction ? point.absoluteAction : point.relativeAction,
  ...(point.interpolated && !relocation ? {} : { relative_action: point.relativeAction }),
  observation: point.observation,
  intersection_observation: point.intersectionObservation,
  instruction: point.instruction,
  instruction_idx: point.instructionIndex
})

const makeEnv = (dataset: RouteDataset, c: Case, languageOnly: boolean) => {
  const rng = new PythonRandom(BigInt(c.seed))
  const config = defaultConfig({ ...c.config, language_only: languageOnly, ...(c.resolution === undefined ? {} : { resolution: c.resolution }) })
  return { rng, config, env: new NavigationEnv(dataset, config, rng, processReward) }
}

const checkRail = (dataset: RouteDataset) => (c: Case): string | undefined => {
  const { rng, config, env } = makeEnv(dataset, c, true)
  const reset = env.reset(c.options ?? undefined)
  const rail = env.episode.rail
  return (
    (c.chosen_route_idx === undefined ? undefined : firstDifference(rail.routeIndex, c.chosen_route_idx, 0, "chosen_route_idx")) ??
      firstDifference(rail.globalInstruction, c.str_instruction, 0, "str_instruction") ??
      firstDifference(rail.instructions, c.list_instruction, 0, "list_instruction") ??
      firstDifference(
        rail.waypoints.map((p) => railPoint(p, config.absolute_action, config.relocation)),
        c.rail,
        GEOCODE_TOLERANCE_DEG,
        "rail"
      ) ??
      firstDifference(reset.info, c.reset_info, 0, "reset_info") ??
      firstDifference(rng.random(), c.next_random_after_reset, 0, "next_random_after_reset")
  )
}

const checkEpisode = (dataset: RouteDataset) => (c: Case): string | undefined => {
  const { rng, env } = makeEnv(dataset, c, c.language_only)
  const template: PromptTemplate = templateFor(c.language_only)
  const templateDiff = firstDifference(template, c.prompt_template, 0, "prompt_template")
  if (templateDiff !== undefined) return templateDiff
  const spaceDiff = firstDifference(env.actionSpace.promptText, c.action_space_text, 0, "action_space_text")
  if (spaceDiff !== undefined) return spaceDiff
  const chat = new Chat(template, env.actionSpace.promptText, !c.language_only)
  let info = env.reset(c.options ?? undefined).info
  const resetDiff = firstDifference(info, c.reset_info, 0, "reset_info")
  if (resetDiff !== undefined) return resetDiff
  for (const [i, s] of (c.steps as Case[]).entries()) {
    const payload = chat.prepare(info)
    const payloadDiff = firstDifference(JSON.parse(JSON.stringify(payload)), s.payload_before, 0, `steps[${i}].payload_before`)
    if (payloadDiff !== undefined) return payloadDiff
    chat.record(s.output)
    const step = env.step(s.output)
    info = step.info
    const diff = firstDifference(step.reward, s.reward, 0, `steps[${i}].reward`) ??
      firstDifference(step.terminated, s.terminated, 0, `steps[${i}].terminated`) ??
      firstDifference(step.truncated, s.truncated, 0, `steps[${i}].truncated`) ??
      firstDifference(step.info, s.info, 0, `steps[${i}].info`) ??
      firstDifference(step.pose === null, s.obs_is_none, 0, `steps[${i}].obs_is_none`)
    if (diff !== undefined) return diff
  }
  return (
    firstDifference(info.is_success, c.is_success, 0, "is_success") ??
      firstDifference(rng.random(), c.next_random_after_episode, 0, "next_random_after_episode")
  )
}

export const readPng = async (file: string): Promise<RgbImage> => {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true })
  return { width: info.width, height: info.height, rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) }
}

export interface ImageDifference {
  readonly mean: number
  readonly outlierShare: number
}

export const imageDifference = (a: RgbImage, b: RgbImage): ImageDifference => {
  let total = 0
  let outliers = 0
  for (let i = 0; i < a.rgb.length; i++) {
    const d = Math.abs(a.rgb[i] - b.rgb[i])
    total += d
    if (d > IMAGE_OUTLIER_LEVEL) outliers++
  }
  return { mean: total / a.rgb.length, outlierShare: outliers / a.rgb.length }
}

const compareImages = (actual: RgbImage, expected: RgbImage): string | undefined => {
  if (actual.width !== expected.width || actual.height !== expected.height) {
    return `shape: expected ${expected.height}×${expected.width}, got ${actual.height}×${actual.width}`
  }
  const { mean, outlierShare } = imageDifference(actual, expected)
  if (mean > IMAGE_MEAN_TOLERANCE || outlierShare > IMAGE_OUTLIER_SHARE) {
    return `image differs: mean |Δ| ${mean.toFixed(3)} (≤ ${IMAGE_MEAN_TOLERANCE}), ${(outlierShare * 100).toFixed(2)}% beyond ${IMAGE_OUTLIER_LEVEL} (≤ ${
      IMAGE_OUTLIER_SHARE * 100
    }%)`
  }
  return undefined
}

const checkView = async (dir: string, dataset: RouteDataset, c: Case): Promise<string | undefined> => {
  const pano = await Effect.runPromise(dataset.panorama(c.pano_id))
  const view = perspectiveView(pano, { heading: c.heading, fov: c.fov, width: c.width, height: c.height, northRotation: c.north_rotation })
  if (c.pitch !== 0) return `pitch ${c.pitch} is not supported (views are cut at pitch 0)`
  return compareImages(view, await readPng(path.join(dir, "cases", c.png)))
}

const checkGrid = async (dir: string, dataset: RouteDataset, c: Case): Promise<string | undefined> => {
  const { env, config } = makeEnv(dataset, c, false)
  env.reset(c.options ?? undefined)
  // the reference's recorder moved the oracle along the rail with move_on_rail (as the
  // reference's own _simulate_one_trajectory_in_rail does): the camera at the rail index's point,
  // whatever verify_iter says — stepping with answers would, with verify_iter 0, reach an index
  // through forced ends that leave the camera behind
  while (env.episode.railIndex < c.rail_index) {
    if (env.episode.groundTruth === "stop()") return `the rail ends at point ${env.episode.railIndex}, before rail index ${c.rail_index}`
    env.episode.moveOnRail()
  }
  const pose = env.episode.pose()
  const poseDiff = firstDifference([...pose.geocode], c.geocode, GEOCODE_TOLERANCE_DEG, "geocode") ?? firstDifference(pose.heading, c.heading, 0, "heading")
  if (poseDiff !== undefined) return poseDiff
  const grid = await Effect.runPromise(new StreetViewRenderer(dataset, config).render(pose))
  const shapeDiff = firstDifference([grid.height, grid.width, 3], c.shape, 0, "shape")
  return shapeDiff ?? compareImages(grid, await readPng(path.join(dir, "cases", c.png)))
}

const SYNC_CHECKS: Record<string, (dataset: RouteDataset) => (c: Case) => string | undefined> = {
  "python_random.json": () => checkRandom,
  "geo.json": () => checkGeo,
  "milestones.json": () => (c) => firstDifference(parseMilestones(c.text), c.parsed),
  "re_match.json": () => (c) => firstDifference(jsonValue(reMatch(c.text, c.pattern as OutputKey)), c.value),
  "rewards.json": () => checkReward,
  "rails.json": checkRail,
  "episodes.json": checkEpisode
}

const ASYNC_CHECKS: Record<string, (dir: string, dataset: RouteDataset, c: Case) => Promise<string | undefined>> = {
  "views.json": checkView,
  "grids.json": checkGrid
}

export const CASE_FILES = [...Object.keys(SYNC_CHECKS), ...Object.keys(ASYNC_CHECKS)]

const labelOf = (c: Case, index: number): string =>
  [c.seed === undefined ? undefined : `seed ${c.seed}`, c.options?.route_idx === undefined ? undefined : `route ${c.options.route_idx}`, c.pattern, c.pano_id]
    .filter((x) => x !== undefined)
    .join(", ") || `#${index}`

/** `episodes.forced-end.json` holds cases of the kind `episodes.json` does. */
export const kindOf = (file: string): string => `${file.split(".")[0]}.json`

/** The case files of a folder that the given checks replay, each kind's main file first. */
const caseFiles = (dir: string, checks: Record<string, unknown>): string[] => {
  const present = fs.existsSync(path.join(dir, "cases")) ? fs.readdirSync(path.join(dir, "cases")).filter((f) => f.endsWith(".json")) : []
  return Object.keys(checks).flatMap((kind) =>
    present.filter((f) => kindOf(f) === kind).sort((a, b) => (a === kind ? -1 : b === kind ? 1 : a.localeCompare(b)))
  )
}

/** Replays every case file of a folder in the fixtures' layout (cases/ beside dataset/). */
export const runConformance = (
  dir: string,
  onResult: (result: CaseResult) => void = () => {}
): Effect.Effect<CaseResult[], Error> =>
  Effect.gen(function*() {
    const dataset = yield* load(path.join(dir, "dataset"))
    const results: CaseResult[] = []
    const record = (r: CaseResult) => {
      results.push(r)
      onResult(r)
    }
    for (const name of caseFiles(dir, SYNC_CHECKS)) {
      const file = readCaseFile(dir, name)
      if (file === undefined) continue
      const check = SYNC_CHECKS[kindOf(name)](dataset)
      file.cases.forEach((c, i) => record(guard(name, i, labelOf(c, i), () => check(c))))
    }
    for (const name of caseFiles(dir, ASYNC_CHECKS)) {
      const file = readCaseFile(dir, name)
      if (file === undefined) continue
      for (const [i, c] of file.cases.entries()) {
        const detail = yield* Effect.tryPromise({ try: () => ASYNC_CHECKS[kindOf(name)](dir, dataset, c), catch: (e) => e as Error }).pipe(
          Effect.catchAll((e) => Effect.succeed(`threw: ${e.message ?? String(e)}`))
        )
        record(outcome(name, i, labelOf(c, i), detail))
      }
    }
    return results
  }).pipe(Effect.mapError((e) => (e instanceof Error ? e : new Error(String(e)))))
