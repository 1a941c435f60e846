import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { CheckpointError, loadCheckpoint } from "../core/checkpoint.ts"
import { StorageError } from "../core/files.ts"
import * as Safetensors from "../core/safetensors.ts"
import { parameterShapes } from "../plugins/policy/tfjs/export.ts"
import { POLICY_NAME } from "../plugins/policy/tfjs/policy.ts"
import { provenance } from "./provenance.ts"

/** How dense weights are laid out, said in every exported file (PyTorch's nn.Linear holds W transposed). */
export const LAYOUT = "dense weights are [in, out]: y = x @ W + b"

/** Where `virl export CHECKPOINT` writes by default: beside the checkpoint folder. */
export const defaultExportPath = (checkpoint: string): string => `${path.resolve(checkpoint).replace(/[\\/]+$/, "")}.safetensors`

export interface Exported {
  readonly file: string
  readonly tensors: number
  readonly values: number
  readonly bytes: number
  /** False when the policy's shapes are unknown to virl and every tensor was written flat. */
  readonly shaped: boolean
}

/**
 * A checkpoint's parameters as a safetensors file: each under its own name with its shape (the
 * tfjs policy's; flat for a policy whose shapes virl does not know), float32, and in the metadata
 * the policy's name and config, the layout of dense weights, where training stood and the
 * commit that exported it. The optimizer's moments are not exported (resume from the checkpoint).
 */
export const exportSafetensors = (checkpoint: string, file: string = defaultExportPath(checkpoint)) =>
  Effect.gen(function*() {
    const ckpt = yield* loadCheckpoint(checkpoint)
    const known = ckpt.policy.name === POLICY_NAME
    const shapes = known ? parameterShapes(ckpt.policy) : Either.right(new Map<string, number[]>())
    if (Either.isLeft(shapes)) return yield* new CheckpointError({ path: checkpoint, message: `cannot export: ${shapes.left}` })
    const tensors: Safetensors.Tensor[] = []
    for (const [name, data] of ckpt.parameters) {
      const shape = known ? shapes.right.get(name) : [data.length]
      if (shape === undefined) return yield* new CheckpointError({ path: checkpoint, message: `parameter ${name} is not one of the ${POLICY_NAME} policy's` })
      if (shape.reduce((a, b) => a * b, 1) !== data.length) {
        return yield* new CheckpointError({
          path: checkpoint,
          message: `parameter ${name} holds ${data.length} values, its shape [${shape.join(", ")}] needs ${shape.reduce((a, b) => a * b, 1)}`
        })
      }
      tensors.push({ name, shape, data })
    }
    const missing = [...shapes.right.keys()].filter((name) => !ckpt.parameters.has(name))
    if (missing.length > 0) return yield* new CheckpointError({ path: checkpoint, message: `cannot export: parameters missing: ${missing.join(", ")}` })
    const metadata = {
      format: "virl-policy/1",
      policy: ckpt.policy.name,
      policy_config: JSON.stringify(ckpt.policy.config),
      layout: LAYOUT,
      phase: ckpt.progress.phase,
      done: String(ckpt.progress.done),
      // the folder's name only: a file passed around should not carry its maker's home path
      checkpoint: path.basename(path.resolve(checkpoint)),
      virl_commit: provenance().commit ?? "unknown"
    }
    yield* Effect.try({
      try: () => Safetensors.write(file, { tensors, metadata }),
      catch: (e) => new StorageError({ path: file, message: `cannot write: ${(e as Error).message}` })
    })
    return {
      file,
      tensors: tensors.length,
      values: tensors.reduce((n, t) => n + t.data.length, 0),
      bytes: fs.statSync(file).size,
      shaped: known
    } satisfies Exported
  })
