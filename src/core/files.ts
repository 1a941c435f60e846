import { Data } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"

/** A file or folder that could not be read, written, moved or locked; names it. */
export class StorageError extends Data.TaggedError("StorageError")<{ readonly path: string; readonly message: string }> {
  override toString(): string {
    return `${this.path}: ${this.message}`
  }
}

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

/**
 * The records of a JSONL file. A last line without its newline was cut by an interruption and
 * is dropped (and removed from the file, so appends continue cleanly — unless `repair` is false:
 * a reader beside other writers may see a line half-written, and leaves it); any other line that
 * does not parse is an error naming the file and line.
 */
export const readRecords = <A>(file: string, options: { readonly repair?: boolean } = {}): A[] => {
  if (!fs.existsSync(file)) return []
  const text = fs.readFileSync(file, "utf8")
  const lines = text.split("\n")
  const complete = lines.slice(0, -1)
  const cut = !text.endsWith("\n") && text !== ""
  const out: A[] = []
  complete.forEach((line, i) => {
    if (line.trim() === "") return
    try {
      out.push(JSON.parse(line) as A)
    } catch {
      throw new Error(`${file}, line ${i + 1}: not a JSON record (${JSON.stringify(line.slice(0, 60))}...); fix or delete the line`)
    }
  })
  if (cut && options.repair !== false) fs.writeFileSync(file, complete.length === 0 ? "" : `${complete.join("\n")}\n`)
  return out
}

/**
 * Drops the records of a JSONL file that `keep` refuses (atomically): a training run resumed
 * from a checkpoint first forgets what it logged after that checkpoint, so nothing is written twice.
 */
export const keepRecords = <A>(file: string, keep: (record: A) => boolean): void => {
  const records = readRecords<A>(file)
  const kept = records.filter(keep)
  if (kept.length !== records.length) writeFileAtomic(file, kept.map((r) => `${JSON.stringify(r)}\n`).join(""))
}
