import * as fs from "node:fs"
import * as path from "node:path"

/** Writes a file through a temporary sibling and a rename, so readers never see half of it. */
export const writeFileAtomic = (file: string, data: string | Uint8Array): void => {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true })
  const tmp = `${file}.tmp-${process.pid}`
  fs.writeFileSync(tmp, data)
  fs.renameSync(tmp, file)
}
