// Writes configs/*.yaml from the presets in src/app/config.ts (npm run configs).
import * as fs from "node:fs"
import * as path from "node:path"
import { PRESET_FILES, presetYaml } from "../src/app/presets.ts"

const root = path.resolve(import.meta.dirname, "..")
for (const [name, { file }] of Object.entries(PRESET_FILES)) {
  fs.writeFileSync(path.join(root, file), presetYaml(name))
  console.log(`${file} <- preset ${name}`)
}
