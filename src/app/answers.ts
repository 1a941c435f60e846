import * as fs from "node:fs"
import * as path from "node:path"
import { ACTION_CLASSES, type ActionBreakdown, actionClass, emptyActionCounts } from "../core/evaluation.ts"
import type { EvalRecord } from "./run-folder.ts"
import { readEpisodes } from "./view/bundle.ts"

/**
 * What a success rate is made of: per ground-truth action (forward, a turn, stop) the answers an
 * arm gives and gets right, and where its failed routes end — the answer that ran out of
 * attempts. Read from the evaluation records where they carry it (`by_action`), else from the
 * episode traces an arm's final point keeps (seed-S/ARM/eval-logs/SUITE-stepN.episodes.jsonl).
 *
 * One evaluation's breakdown: its record's, or its traces', or undefined where neither is kept.
 */
export const breakdownOf = (runDir: string, record: EvalRecord): ActionBreakdown | undefined => {
  if (record.metrics.by_action !== undefined) return record.metrics.by_action
  const file = path.join(runDir, `seed-${record.seed}`, record.arm, "eval-logs", `${record.suite}-step${record.step}.episodes.jsonl`)
  if (!fs.existsSync(file)) return undefined
  const out = emptyActionCounts()
  for (const episode of readEpisodes(file)) {
    episode.steps.forEach((s, k) => {
      const c = out[actionClass(s.gt_action)]
      c.answers++
      if (s.verdict === "Correct") c.correct++
      if (!episode.success && k === episode.steps.length - 1) c.failed_here++
    })
  }
  return out
}

/** Breakdowns summed over evaluations (seeds). */
export const sumBreakdowns = (parts: ReadonlyArray<ActionBreakdown>): ActionBreakdown => {
  const out = emptyActionCounts()
  for (const p of parts) {
    for (const k of ACTION_CLASSES) {
      out[k].answers += p[k].answers
      out[k].correct += p[k].correct
      out[k].failed_here += p[k].failed_here
    }
  }
  return out
}

/** An arm's final-point breakdown on a suite over the given seeds, or undefined where a seed has none. */
export const finalBreakdown = (
  runDir: string,
  evals: ReadonlyArray<EvalRecord>,
  arm: string,
  suite: string,
  seeds: ReadonlyArray<number>
): ActionBreakdown | undefined => {
  const parts: ActionBreakdown[] = []
  for (const seed of seeds) {
    const record = evals.find((e) => e.arm === arm && e.suite === suite && e.seed === seed && e.step === e.total)
    const b = record === undefined ? undefined : breakdownOf(runDir, record)
    if (b === undefined) return undefined
    parts.push(b)
  }
  return parts.length === 0 ? undefined : sumBreakdowns(parts)
}
