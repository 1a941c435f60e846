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
