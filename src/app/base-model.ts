import { Effect } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { isCheckpoint } from "../core/checkpoint.ts"
import { StorageError } from "../core/files.ts"
import * as Absolute from "../plugins/action-space/absolute.ts"
import * as Relative from "../plugins/action-space/relative.ts"
import { cacheRoot, ensureMixture, MIXTURE_PANORAMA } from "../plugins/dataset/synth/default.ts"
import { NAME as ADAMW } from "../plugins/optimizer/adamw.ts"
import { NOT_FOUND, parseOutput } from "../domain/virl/output-parsing.ts"
import { describingOracle, oracle } from "../plugins/policy/oracle.ts"
import { POLICY_NAME } from "../plugins/policy/tfjs/layer.ts"
import { Random } from "../core/random.ts"
import type { RunConfig } from "./config.ts"
import { type BaseMakers, behaviourCloning, CHECKPOINT_DIR, currentMakers, type Progress, silent } from "./train.ts"

/**
 * The base model: built once per recipe into the cache (`VIRL_CACHE`), one builder at a time
 * under a lock, and copied into the `pretrain` arms that use it.
 */

/** Bumped when the pretraining recipe or the policy's architecture changes: cached bases are rebuilt. */
export const BASE_RECIPE = 2

const DEFAULT_MAKERS: BaseMakers = { policy: POLICY_NAME, optimizer: ADAMW }

/** pretrain_config as the cache knows it: settings added later leave a base built before them where it was while they keep their defaults. */
const pretrainRecipe = (config: RunConfig) => {
  const { answer_format, ...known } = config.pretrain_config
  const { relative_share, ...rest } = known
  const recipe = relative_share === 1 ? rest : known
  return answer_format === "json" ? recipe : { ...recipe, answer_format }
}

/**
 * policy_config as the cache knows it: the tfjs policy's own keys for its bases (the generative
 * policy's keys, added later, would otherwise have moved every cached base), all of it for
 * another policy's.
 */
const policyRecipe = (config: RunConfig, makers: BaseMakers) => {
  if (makers.policy !== DEFAULT_MAKERS.policy) return config.policy_config
  const { embedding, hidden, patch, patch_features } = config.policy_config
  return { embedding, hidden, patch, patch_features }
}

/**
 * An answer of the task's format said in plain sentences — its observation, instruction and
 * action, no JSON: "I see No landmarks nearby. I follow: Move forward …. I go forward." The
 * environment's parser finds no action in it.
 */
export const plainSentences = (text: string): string => {
  const parsed = parseOutput(text)
  const field = (v: unknown) => (typeof v === "string" && v !== NOT_FOUND ? v.trim().replace(/;$/, "") : "")
  const action = field(parsed.action)
  const doing = action === "forward()"
    ? "go forward"
    : action === "stop()"
    ? "stop here"
    : action.startsWith("turn_direction(")
    ? `turn ${action.slice("turn_direction(".length, -1)}`
    : action
  return `I see ${field(parsed.observation)}. I follow: ${field(parsed.instruction)} So I ${doing}.`
}

const baseKey = (config: RunConfig, makers: BaseMakers): string => {
  // language_only joined the environment's settings later: off, it leaves the key as it was
  const { absolute_action: _, language_only, ...rest } = config.env_config
  const env = language_only ? { ...rest, language_only } : rest
  const custom = makers.policy !== DEFAULT_MAKERS.policy || makers.policyKey !== undefined || makers.optimizer !== DEFAULT_MAKERS.optimizer
  return createHash("sha256")
    .update(
      JSON.stringify({
        recipe: BASE_RECIPE,
        pretrain: pretrainRecipe(config),
        policy: policyRecipe(config, makers),
        env,
        panorama: MIXTURE_PANORAMA,
        ...(custom ? { makers } : {}),
        ...(config.optimizer_config.beta1 !== 0.9 || config.optimizer_config.beta2 !== 0.999
          ? { betas: [config.optimizer_config.beta1, config.optimizer_config.beta2] }
          : {}),
        // eps and weight decay joined the base's recipe later: their values then leave the key as it was
        ...(config.optimizer_config.eps !== 1e-7 || config.optimizer_config.weight_decay !== 0
          ? { adam: { eps: config.optimizer_config.eps, weight_decay: config.optimizer_config.weight_decay } }
          : {})
      })
    )
    .digest("hex")
    .slice(0, 12)
}

export const baseDir = (config: RunConfig, makers: BaseMakers = DEFAULT_MAKERS): string => path.join(cacheRoot(), `base-${baseKey(config, makers)}`)

const BASE_MARKER = "recipe.json"

/**
 * The base model: behaviour cloning on the pretraining mixture — `styles` procedurally varied
 * cities (never the nyc or sf look), every route under absolute directions and `relative_share`
 * of them under relative ones too (spread evenly over the styles), instructions in varied
 * wording, observations described in several correct ways, answers in the task's format or (with
 * `answer_format: sentences`) in plain sentences — from `pretrain_config.seed`. Built
 * once into the cache (`VIRL_CACHE`, keyed by the recipe: pretrain, policy and environment
 * settings) and reused by every run and seed after; an interrupted build resumes from its last
 * epoch. Returns the folder holding `checkpoint/` and `metrics.jsonl`.
 */
export const ensureBase = (config: RunConfig, progress: Progress = silent) =>
  Effect.gen(function*() {
    const makers = yield* currentMakers
    const dir = baseDir(config, makers)
    const recipe = JSON.stringify({ recipe: BASE_RECIPE, pretrain_config: pretrainRecipe(config), policy_config: policyRecipe(config, makers) }, null, 2)
    const ready = () => {
      try {
        return fs.readFileSync(path.join(dir, BASE_MARKER), "utf8") === recipe && isCheckpoint(path.join(dir, CHECKPOINT_DIR))
      } catch {
        return false
      }
    }
    if (ready()) return dir
    // one builder at a time: another process building the same base is waited for; the lock
    // goes with the scope, whether the build finished, failed or was interrupted
    return yield* Effect.scoped(
      Effect.gen(function*() {
        yield* holdLock(`${dir}.lock`, ready, progress)
        if (ready()) return dir
        const p = config.pretrain_config
        const work = `${dir}.work`
        progress.log(`building the base model into ${dir} (once; ${p.styles} city styles × ${p.routes} routes, both rule sets, ${p.epochs} epochs)`)
        const datasets = yield* ensureMixture(
          { styles: p.styles, routes: p.routes, firstStyle: p.first_style },
          { onProgress: progress.bar("rendering the pretraining mixture"), log: progress.log }
        )
        const describe = describingOracle((yield* Random).make(BigInt(p.seed) * 31n + 7n))
        // relative_share of all the mixture's routes, spread evenly over the styles (each style's first ones)
        const relativeTotal = Math.round(p.relative_share * p.styles * p.routes)
        const relativeRoutes = (style: number) => Math.floor(((style + 1) * relativeTotal) / p.styles) - Math.floor((style * relativeTotal) / p.styles)
        yield* behaviourCloning(
          config,
          "pretrain",
          { ...p, temperature: 1 },
          () =>
            Effect.succeed(
              datasets.flatMap((d, k) =>
                [
                  { actionSpace: Absolute.layer, routes: p.routes },
                  { actionSpace: Relative.layer, routes: relativeRoutes(k) }
                ].flatMap(({ actionSpace, routes }, r) =>
                  routes === 0
                    ? []
                    : [
                      {
                        dir: d,
                        actionSpace,
                        routes,
                        passes: p.passes,
                        expert: p.descriptions === "varied" ? describe : oracle,
                        instructionVariants: p.instruction_variants,
                        seed: p.seed * 1000 + k * 2 + r,
                        ...(p.answer_format === "sentences" ? { written: plainSentences } : {})
                      }
                    ]
                )
              )
            ),
          work,
          progress,
          { seed: p.seed, meta: { mixture: datasets } }
        )
        yield* Effect.try({
          try: () => {
            fs.writeFileSync(path.join(work, BASE_MARKER), recipe)
            fs.rmSync(dir, { recursive: true, force: true })
            fs.renameSync(work, dir)
          },
          catch: (e) => new StorageError({ path: dir, message: `cannot move the base model here: ${String(e)}` })
        })
        return dir
      })
    )
  })

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * A lock file holding its owner's pid, created exclusively and removed when the scope closes.
 * Held by a live process, it is waited for (until `done` says the work is there: then nothing is
 * held); left by a dead one, it is taken over.
 */
export const holdLock = (file: string, done: () => boolean, progress: Progress) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      let announced = false
      for (;;) {
        try {
          fs.mkdirSync(path.dirname(file), { recursive: true })
          fs.writeFileSync(file, String(process.pid), { flag: "wx" })
          return true
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") return yield* new StorageError({ path: file, message: `cannot create the lock: ${String(e)}` })
        }
        let owner = 0
        try {
          owner = Number(fs.readFileSync(file, "utf8"))
        } catch {
          // removed by its owner between our attempt and this read: try again
          continue
        }
        if (!Number.isInteger(owner) || owner <= 0 || !alive(owner)) {
          fs.rmSync(file, { force: true })
          continue
        }
        if (done()) return false
        if (!announced) progress.log(`waiting for process ${owner}, which is building the same base model (${file})`)
        announced = true
        yield* Effect.sleep("2 seconds")
      }
    }),
    (held) => Effect.sync(() => held && fs.rmSync(file, { force: true }))
  )

/** A `pretrain` arm: the cached base (built if missing), copied into the arm's folder. */
export const trainPretrain = (config: RunConfig, out: string, progress: Progress = silent) =>
  Effect.gen(function*() {
    const source = yield* ensureBase(config, progress)
    const ckptDir = path.join(out, CHECKPOINT_DIR)
    if (!isCheckpoint(ckptDir)) {
      yield* Effect.try({
        try: () => {
          fs.mkdirSync(out, { recursive: true })
          fs.cpSync(path.join(source, "metrics.jsonl"), path.join(out, "metrics.jsonl"))
          fs.cpSync(path.join(source, "config.json"), path.join(out, "config.json"))
          fs.rmSync(`${ckptDir}.partial`, { recursive: true, force: true })
          fs.cpSync(path.join(source, CHECKPOINT_DIR), `${ckptDir}.partial`, { recursive: true })
          fs.renameSync(`${ckptDir}.partial`, ckptDir)
        },
        catch: (e) => new StorageError({ path: out, message: `cannot copy the base model here from ${source}: ${String(e)}` })
      })
    }
    return ckptDir
  })
