import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { synthesize } from "../../src/plugins/dataset/synth/generate.ts"

/** A small synthetic city with small panoramas, made once per test file. */
export const tinyCity = async (city: "nyc" | "sf", routes: number, seed = 3): Promise<string> => {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "virl-tiny-")), city)
  await Effect.runPromise(synthesize({ city, seed, splits: [{ dir, routes }], panorama: { width: 256, height: 128 } }))
  return dir
}

export const removeCity = (dir: string) => fs.rmSync(path.dirname(dir), { recursive: true, force: true })

/**
 * The three default datasets in miniature (VIRL_DATASETS layout: nyc-train, nyc-eval, sf) with
 * tiny panoramas, for whole runs and sweeps driven through the CLI.
 */
export const tinyDatasets = async (root: string): Promise<void> => {
  const small = { width: 128, height: 64 }
  await Effect.runPromise(
    synthesize({
      city: "nyc",
      seed: 2,
      splits: [{ dir: path.join(root, "nyc-train"), routes: 3 }, { dir: path.join(root, "nyc-eval"), routes: 2 }],
      panorama: small
    })
  )
  await Effect.runPromise(synthesize({ city: "sf", seed: 2, splits: [{ dir: path.join(root, "sf"), routes: 2 }], panorama: small }))
}
