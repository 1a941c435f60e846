import type { ActionSpaceDefinition } from "../../../core/action-space.ts"
import type { RouteDataset } from "../../../core/dataset.ts"
import type { Rng } from "../../../core/random.ts"
import type { RewardFunction, Verdict } from "../../../core/reward.ts"
import { absolute } from "../../action-space/absolute.ts"
import { relative } from "../../action-space/relative.ts"
import type { VirlEnvConfig } from "./config.ts"
import { Episode, type StepInfo, type ViewPose } from "../../../domain/virl/episode.ts"
import { RouteError, variedSentences } from "../../../domain/virl/instructions.ts"
import { buildRail, initialHeading } from "../../../domain/virl/rail.ts"

export interface ResetOptions {
  readonly route_idx?: number
}

export interface Reset {
  readonly pose: ViewPose | null
  readonly info: StepInfo
}

export interface Step {
  readonly pose: ViewPose | null
  readonly reward: number
  readonly terminated: boolean
  readonly truncated: boolean
  readonly info: StepInfo
  readonly verdict: Verdict
}

/**
 * One V-IRL navigation environment (the reference's NavigationEnvironment behind Gymnasium's
 * TimeLimit): reset draws a route and builds its rail; step verifies one answer.
 */
export class NavigationEnv {
  private current: Episode | undefined
  readonly actionSpace: ActionSpaceDefinition

  constructor(
    readonly dataset: RouteDataset,
    readonly config: VirlEnvConfig,
    private readonly rng: Rng,
    private readonly reward: RewardFunction,
    actionSpace?: ActionSpaceDefinition,
    /** Draws the wording of each episode's instructions when `instruction_variants` is on. */
    private readonly wording?: Rng
  ) {
    this.actionSpace = actionSpace ?? (config.absolute_action ? absolute : relative)
  }

  get episode(): Episode {
    if (this.current === undefined) throw new Error("the environment has not been reset")
    return this.current
  }

  reset(options?: ResetOptions): Reset {
    const routes = this.dataset.routes
    if (routes.length === 0) throw new RouteError({ routeIndex: -1, field: "route_infos.json", message: "the dataset has no routes" })
    const routeIndex = options?.route_idx ?? this.rng.choiceIndex(routes.length)
    if (!Number.isInteger(routeIndex) || routeIndex < 0 || routeIndex >= routes.length) {
      throw new RouteError({ routeIndex, field: "route_idx", message: `out of range: the dataset has ${routes.length} routes` })
    }
    const route = routes[routeIndex]
    const relocate = (geocode: readonly [number, number], radius: number) => this.dataset.nearestPanorama(geocode, radius)
    // The reference relocates the start before drawing the heading; neither draws from the RNG.
    const heading = initialHeading(route, this.rng)
    const wording = this.config.instruction_variants && this.wording !== undefined ? this.wording : undefined
    const rail = buildRail(
      route,
      routeIndex,
      heading,
      this.config,
      this.rng,
      relocate,
      wording === undefined ? undefined : (turns) => variedSentences(turns, wording)
    )
    this.current = new Episode(rail, this.actionSpace, this.config)
    return { pose: this.config.language_only ? null : this.current.pose(), info: this.current.resetInfo() }
  }

  step(output: string): Step {
    const episode = this.episode
    const result = episode.step(output)
    let reward = this.reward.step(result.verdict)
    if (result.terminated || result.truncated) {
      reward += this.reward.episodeEnd({ success: result.info.is_success && result.terminated, steps: episode.steps })
    }
    return { pose: result.pose, reward, terminated: result.terminated, truncated: result.truncated, info: result.info, verdict: result.verdict }
  }
}
