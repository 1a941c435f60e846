import { Effect } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { pipeline } from "node:stream/promises"
import yauzl from "yauzl"
import { DatasetError } from "../../core/dataset.ts"
import { ROUTES_FILE } from "./virl-routes.ts"

/**
 * The paper's V-IRL data from the Hugging Face hub (tianzhechu/SFTvsRL_Data, VIRL_routes/):
 * listed through the hub's tree API (each LFS file's size and sha256), downloaded through its
 * `resolve` URLs into `.part` files that a later call continues with an HTTP Range request,
 * checked against the sha256, unzipped, and arranged as VIRL_DATASETS expects. The reference's
 * scripts say which data each split uses: training, in-distribution and rule-OOD evaluation all
 * on nyc_1k_routes (evaluation draws 48 of its routes), visual-OOD on VLN_mini's 18 San Francisco
 * routes in order — so nyc-train and nyc-eval are the same folder, as in the reference.
 */
export interface HubOptions {
  /** The hub's address (HF_ENDPOINT; default https://huggingface.co). */
  readonly endpoint: string
  /** The hub token (see `hubToken`), sent as a bearer token to the hub (not to the storage it redirects to). */
  readonly token?: string
  readonly repo: string
  readonly revision: string
  /** Files downloaded at once. */
  readonly parallel: number
  readonly timeoutMs: number
}

export interface HubFile {
  /** Path in the repository. */
  readonly path: string
  readonly size: number
  /** The LFS object's sha256, when the hub lists one. */
  readonly sha256?: string
}

export const SFTVSRL: { readonly repo: string; readonly folder: string; readonly files: Readonly<Record<"nyc" | "sf", string>> } = {
  repo: "tianzhechu/SFTvsRL_Data",
  folder: "VIRL_routes",
  files: { nyc: "VIRL_routes/nyc_1k_routes.zip", sf: "VIRL_routes/VLN_mini.zip" }
}

const headers = (options: HubOptions, extra: Record<string, string> = {}) => ({
  ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
  ...extra
})

const encodePath = (p: string) => p.split("/").map(encodeURIComponent).join("/")

/** The files under `folder` of the dataset repository, with their sizes and LFS sha256s. */
export const listFiles = async (options: HubOptions, folder: string): Promise<HubFile[]> => {
  const url = `${options.endpoint}/api/datasets/${options.repo}/tree/${encodeURIComponent(options.revision)}/${encodePath(folder)}`
  const response = await fetch(url, { headers: headers(options), signal: AbortSignal.timeout(options.timeoutMs) })
  if (!response.ok) {
    const hint = response.status === 401 || response.status === 403 ? " (set HF_TOKEN, or log in with huggingface-cli, if the repository needs a token)" : ""
    throw new Error(`${url}: HTTP ${response.status}${hint}`)
  }
  const entries = (await response.json()) as ReadonlyArray<{ type?: string; path?: string; size?: number; lfs?: { oid?: string; size?: number } }>
  if (!Array.isArray(entries)) throw new Error(`${url}: the hub did not answer with a list of files`)
  return entries
    .filter((e) => e.type === "file" && typeof e.path === "string")
    .map((e) => ({ path: e.path!, size: e.lfs?.size ?? e.size ?? 0, ...(e.lfs?.oid === undefined ? {} : { sha256: e.lfs.oid }) }))
}

export const sha256File = async (file: string): Promise<string> => {
  const hash = createHash("sha256")
  await pipeline(fs.createReadStream(file), hash)
  return hash.digest("hex")
}

/**
 * Downloads one file to `target`, continuing a `target.part` an earlier call left (Range: bytes=N-;
 * a server that answers 200 instead starts it over), then checks its size and sha256: a file that
 * does not match is deleted and its name is in the error. A finished, matching `target` is kept.
 */
export const download = async (
  options: HubOptions,
  file: HubFile,
  target: string,
  onBytes: (done: number, total: number) => void
): Promise<"present" | "downloaded"> => {
  if (fs.existsSync(target) && fs.statSync(target).size === file.size && (file.sha256 === undefined || (await sha256File(target)) === file.sha256)) {
    onBytes(file.size, file.size)
    return "present"
  }
  fs.mkdirSync(path.dirname(target), { recursive: true })
  const part = `${target}.part`
  let have = fs.existsSync(part) ? fs.statSync(part).size : 0
  if (have > file.size) {
    fs.rmSync(part)
    have = 0
  }
  const url = `${options.endpoint}/datasets/${options.repo}/resolve/${encodeURIComponent(options.revision)}/${encodePath(file.path)}`
  if (have < file.size) {
    // a connection that goes quiet for the timeout is dropped (what arrived stays in the .part file)
    const quiet = new AbortController()
    const watch = () => setTimeout(() => quiet.abort(new Error(`no data for ${options.timeoutMs} ms`)), options.timeoutMs)
    let timer = watch()
    try {
      const response = await fetch(url, { headers: headers(options, have > 0 ? { range: `bytes=${have}-` } : {}), redirect: "follow", signal: quiet.signal })
      if (!response.ok || response.body === null) throw new Error(`${url}: HTTP ${response.status}`)
      // 206: the rest of the file; 200: all of it (the server ignored the range)
      if (response.status !== 206) have = 0
      // each chunk written as it arrives, so that a dropped connection keeps every byte received
      const fd = fs.openSync(part, have > 0 ? "a" : "w")
      let done = have
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          fs.writeSync(fd, chunk)
          clearTimeout(timer)
          timer = watch()
          onBytes(done += chunk.length, file.size)
        }
      } finally {
        fs.closeSync(fd)
      }
    } catch (e) {
      if ((e as Error).message.startsWith(url)) throw e
      const reason = quiet.signal.aborted ? (quiet.signal.reason as Error).message : (e as Error).message
      throw new Error(`${url}: ${reason}; ${fs.existsSync(part) ? fs.statSync(part).size : 0} bytes kept in ${part}, run the same command to continue`)
    } finally {
      clearTimeout(timer)
    }
  }
  const size = fs.statSync(part).size
  const digest = file.sha256 === undefined ? undefined : await sha256File(part)
  if (size !== file.size || (digest !== undefined && digest !== file.sha256)) {
    fs.rmSync(part)
    throw new CorruptDownload(
      target,
      size !== file.size ? `${size} bytes, the hub lists ${file.size}` : `sha256 ${digest}, the hub lists ${file.sha256}`
    )
  }
  fs.renameSync(part, target)
  return "downloaded"
}

/** A download whose bytes do not match what the hub lists (deleted; fetched again by `fetchFiles`). */
export class CorruptDownload extends Error {
  constructor(
    readonly file: string,
    readonly why: string
  ) {
    super(`${file}: corrupt download (${why}); deleted`)
  }
}

/**
 * Extracts a zip into `dir` (through `dir.partial`, renamed into place when whole). An entry whose
 * path would leave `dir` (absolute, or with `..`) is refused by name.
 */
export const unzip = async (zip: string, dir: string, onEntry: (done: number, total: number) => void): Promise<void> => {
  const staging = `${dir}.partial`
  fs.rmSync(staging, { recursive: true, force: true })
  fs.mkdirSync(staging, { recursive: true })
  const archive = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(zip, { lazyEntries: true, autoClose: true }, (e, z) => (e === null || e === undefined ? resolve(z!) : reject(e)))
  )
  await new Promise<void>((resolve, reject) => {
    let done = 0
    archive.on("error", (e: Error) => reject(new Error(`${zip}: ${e.message}`)))
    archive.on("end", () => resolve())
    archive.on("entry", (entry: yauzl.Entry) => {
      const name = entry.fileName
      const target = path.resolve(staging, name)
      if (path.isAbsolute(name) || !target.startsWith(path.resolve(staging) + path.sep)) {
        archive.close()
        return reject(new Error(`${zip}: entry ${JSON.stringify(name)} would be written outside ${dir}`))
      }
      onEntry(++done, archive.entryCount)
      if (name.endsWith("/")) {
        fs.mkdirSync(target, { recursive: true })
        return archive.readEntry()
      }
      fs.mkdirSync(path.dirname(target), { recursive: true })
      archive.openReadStream(entry, (e, stream) => {
        if (e !== null && e !== undefined) return reject(e)
        pipeline(stream!, fs.createWriteStream(target)).then(() => archive.readEntry(), reject)
      })
    })
    archive.readEntry()
  })
  fs.rmSync(dir, { recursive: true, force: true })
  fs.renameSync(staging, dir)
}

/** The folder under `dir` that holds route_infos.json (the zip's own top folder, or `dir`). */
export const datasetFolder = (dir: string): string | undefined => {
  if (fs.existsSync(path.join(dir, ROUTES_FILE))) return dir
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === "__MACOSX") continue
    const found = datasetFolder(path.join(dir, entry.name))
    if (found !== undefined) return found
  }
  return undefined
}

export interface FetchReport {
  /** The folder to point VIRL_DATASETS at. */
  readonly root: string
  readonly folders: Readonly<Record<"nyc-train" | "nyc-eval" | "sf", string>>
  readonly downloaded: ReadonlyArray<string>
  readonly present: ReadonlyArray<string>
}

export interface FetchProgress {
  readonly bar: (label: string) => (done: number, total: number) => void
  readonly log: (line: string) => void
}

/**
 * Links `link` to `target` (a folder under `out/extracted`), replacing only a link that points
 * there — one this command made. Anything else at `link` (a folder of real data, a link of the
 * user's) is left alone and named.
 */
const linkFolder = (target: string, link: string, extracted: string) => {
  const stat = fs.lstatSync(link, { throwIfNoEntry: false })
  if (stat !== undefined) {
    const ours = stat.isSymbolicLink() && !path.relative(extracted, path.resolve(path.dirname(link), fs.readlinkSync(link))).startsWith("..")
    if (!ours) {
      throw new Error(
        `${link} exists and is not a link this command made (into ${extracted}); it is left as it is: move it, or fetch into another folder (--out)`
      )
    }
    fs.unlinkSync(link)
  }
  fs.symlinkSync(path.relative(path.dirname(link), target), link, "junction")
}

/**
 * The hub token, where the hub's own tools look for it: HF_TOKEN, else the file HF_TOKEN_PATH
 * names, else `token` under HF_HOME (default XDG_CACHE_HOME/huggingface, ~/.cache/huggingface)
 * — where `huggingface-cli login` saves it.
 */
export const hubToken = (env: Readonly<Record<string, string | undefined>>, home: string): string | undefined => {
  const set = (v: string | undefined) => (v === undefined || v.trim() === "" ? undefined : v.trim())
  const direct = set(env["HF_TOKEN"])
  if (direct !== undefined) return direct
  const hfHome = set(env["HF_HOME"]) ?? path.join(set(env["XDG_CACHE_HOME"]) ?? path.join(home, ".cache"), "huggingface")
  const file = set(env["HF_TOKEN_PATH"]) ?? path.join(hfHome, "token")
  try {
    return set(fs.readFileSync(file, "utf8"))
  } catch {
    return undefined
  }
}

/**
 * Fetches the paper's routes into `out`: downloads/ (the zips), extracted/ (their contents) and
 * nyc-train, nyc-eval, sf (links to the extracted datasets). Resumable and idempotent: what is
 * whole and matches the hub's sha256 is kept; a corrupt file is named, deleted and fetched again
 * once. Errors name the file or URL.
 */
export const fetchSftVsRl = (out: string, options: HubOptions, progress: FetchProgress) =>
  Effect.tryPromise({
    try: async (): Promise<FetchReport> => {
      const listed = await listFiles(options, SFTVSRL.folder)
      const wanted = Object.values(SFTVSRL.files).map((p) => {
        const f = listed.find((l) => l.path === p)
        if (f === undefined) {
          throw new Error(
            `${options.repo}@${options.revision} has no ${p} (it lists ${listed.map((l) => l.path).join(", ") || "nothing"} under ${SFTVSRL.folder})`
          )
        }
        return f
      })
      const downloaded: string[] = []
      const present: string[] = []
      const queue = [...wanted]
      const worker = async () => {
        for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
          const target = path.join(out, "downloads", f.path)
          const bar = progress.bar(`downloading ${path.basename(f.path)} (${(f.size / 1e6).toFixed(1)} MB)`)
          let outcome: "present" | "downloaded"
          try {
            outcome = await download(options, f, target, bar)
          } catch (e) {
            if (!(e instanceof CorruptDownload)) throw e
            progress.log(`${e.message}: fetching it again`)
            outcome = await download(options, f, target, bar)
          }
          ;(outcome === "present" ? present : downloaded).push(target)
        }
      }
      await Promise.all(Array.from({ length: Math.max(1, options.parallel) }, worker))
      const folders: Record<string, string> = {}
      for (const [key, p] of Object.entries(SFTVSRL.files)) {
        const zip = path.join(out, "downloads", p)
        const extracted = path.join(out, "extracted", path.basename(p, ".zip"))
        const marker = path.join(extracted, ".virl-extracted")
        const stamp = `${fs.statSync(zip).size} ${fs.statSync(zip).mtimeMs}`
        if (!fs.existsSync(marker) || fs.readFileSync(marker, "utf8") !== stamp) {
          await unzip(zip, extracted, progress.bar(`unzipping ${path.basename(p)}`))
          fs.writeFileSync(marker, stamp)
        }
        const folder = datasetFolder(extracted)
        if (folder === undefined) throw new Error(`${zip}: no ${ROUTES_FILE} in the archive`)
        folders[key] = folder
      }
      const extracted = path.join(out, "extracted")
      linkFolder(folders["nyc"]!, path.join(out, "nyc-train"), extracted)
      linkFolder(folders["nyc"]!, path.join(out, "nyc-eval"), extracted)
      linkFolder(folders["sf"]!, path.join(out, "sf"), extracted)
      return {
        root: out,
        folders: { "nyc-train": path.join(out, "nyc-train"), "nyc-eval": path.join(out, "nyc-eval"), sf: path.join(out, "sf") },
        downloaded,
        present
      }
    },
    catch: (e) => new DatasetError({ path: out, message: `fetch ${options.repo}: ${e instanceof Error ? e.message : String(e)}` })
  })
