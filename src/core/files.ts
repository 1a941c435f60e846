import * as fs from "node:fs"
import * as path from "node:path"

/** Writes a file through a temporary sibling and a rename, so readers never see half of it. */
export const writeFileAtomic = (file: string, data: string | Uint8Array): void => {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true })
  const tmp = `${file}.tmp-${process.pid}`
  fs.writeFileSync(tmp, data)
  fs.renameSync(tmp, file)
}

/**
 * A folder built once and reused: `dir` holds `marker` with exactly `recipe` when it is ready.
 * Otherwise it is built in a staging sibling and renamed into place, so an interrupted or
 * concurrent build never leaves a half folder where a reader would find it; if another process
 * finishes first, its copy is kept.
 */
export const buildOnce = async (dir: string, marker: string, recipe: string, build: (staging: string) => Promise<void>): Promise<boolean> => {
  const ready = () => {
    try {
      return fs.readFileSync(path.join(dir, marker), "utf8") === recipe
    } catch {
      return false
    }
  }
  if (ready()) return false
  const staging = `${dir}.partial-${process.pid}`
  fs.rmSync(staging, { recursive: true, force: true })
  fs.mkdirSync(staging, { recursive: true })
  try {
    await build(staging)
    fs.writeFileSync(path.join(staging, marker), recipe)
    if (ready()) return false
    fs.rmSync(dir, { recursive: true, force: true })
    try {
      fs.renameSync(staging, dir)
    } catch (e) {
      if (!ready()) throw e
    }
  } finally {
    fs.rmSync(staging, { recursive: true, force: true })
  }
  return true
}
