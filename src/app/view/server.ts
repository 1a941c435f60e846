import { Data, Effect } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { writeFileAtomic } from "../../core/files.ts"
import { indexScript, logScript, readIndex, readLog, type ViewIndex } from "./bundle.ts"

/**
 * `virl view`: the run's page served on loopback, or written out as static files. The server
 * answers the page's own assets, the data scripts, and files under the run's plots/ and frames/
 * only — a path that leaves the run folder (`..`, encoded or not, or a symlink pointing out) is
 * refused.
 */
export const ASSETS = path.join(path.dirname(fileURLToPath(import.meta.url)), "assets")
const PAGE_FILES = ["index.html", "viewer.js", "viewer.css"] as const
const SERVED_DIRS = ["plots", "frames"] as const

export class ViewError extends Data.TaggedError("ViewError")<{ readonly message: string }> {}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".jpg": "image/jpeg"
}
const SECURITY = {
  "X-Content-Type-Options": "nosniff",
  "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
  "Referrer-Policy": "no-referrer"
}

/**
 * The file under `root` a URL path names, or undefined: the path must decode cleanly, have no
 * `..`/`.` segment, backslash or NUL, start with one of `dirs`, and resolve (symlinks followed)
 * to a regular file inside `root`.
 */
export const safeFile = (root: string, urlPath: string, dirs: ReadonlyArray<string>): string | undefined => {
  let decoded: string
  try {
    decoded = decodeURIComponent(urlPath)
  } catch {
    return undefined
  }
  if (decoded.includes("\0") || decoded.includes("\\")) return undefined
  const segments = decoded.split("/").filter((s) => s !== "")
  if (segments.length < 2 || segments.some((s) => s === ".." || s === ".") || !dirs.includes(segments[0]!)) return undefined
  try {
    const realRoot = fs.realpathSync(root)
    const real = fs.realpathSync(path.join(realRoot, ...segments))
    if (!real.startsWith(realRoot + path.sep)) return undefined
    return fs.statSync(real).isFile() ? real : undefined
  } catch {
    return undefined
  }
}

export const handler = (runDir: string) => {
  let cached: { at: number; index: ViewIndex } | undefined
  // the index is re-read at most every 2 s, so a page reloaded during a run shows new episodes
  const index = () => {
    if (cached === undefined || Date.now() - cached.at > 2000) cached = { at: Date.now(), index: readIndex(runDir) }
    return cached.index
  }
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const send = (status: number, type: string, body: string | Buffer) => {
      res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store", ...SECURITY })
      res.end(req.method === "HEAD" ? undefined : body)
    }
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "text/plain", "method not allowed\n")
    const url = new URL(req.url ?? "/", "http://localhost")
    const p = url.pathname
    if (p === "/" || p === "/index.html") return send(200, TYPES[".html"]!, fs.readFileSync(path.join(ASSETS, "index.html")))
    if (p === "/viewer.js" || p === "/viewer.css") return send(200, TYPES[path.extname(p)]!, fs.readFileSync(path.join(ASSETS, p.slice(1))))
    if (p === "/data.js") return send(200, TYPES[".js"]!, indexScript(index()))
    const episodes = /^\/episodes\/([A-Za-z0-9_.-]+)\.js$/.exec(p)
    if (episodes !== null) {
      const log = readLog(runDir, index(), episodes[1]!)
      return log === undefined ? send(404, "text/plain", "no such evaluation log\n") : send(200, TYPES[".js"]!, logScript(episodes[1]!, log))
    }
    const file = safeFile(runDir, p, SERVED_DIRS)
    if (file === undefined) return send(404, "text/plain", "not found\n")
    return send(200, TYPES[path.extname(file)] ?? "application/octet-stream", fs.readFileSync(file))
  }
}

/** Serves the page until interrupted; resolves with the address once listening. */
export const serve = (runDir: string, options: { readonly port: number; readonly host: string }) =>
  Effect.async<http.Server, ViewError>((resume) => {
    const server = http.createServer(handler(runDir))
    server.once("error", (e) => resume(Effect.fail(new ViewError({ message: `cannot listen on ${options.host}:${options.port}: ${e.message}` }))))
    server.listen(options.port, options.host, () => resume(Effect.succeed(server)))
  })

/** Writes the page, its data and the files it shows to `out`, to open from disk. */
export const exportStatic = (runDir: string, out: string) =>
  Effect.try({
    try: () => {
      const index = readIndex(runDir)
      fs.mkdirSync(out, { recursive: true })
      if (fs.existsSync(out) && path.resolve(out) === path.resolve(runDir)) throw new Error("--out must not be the run folder itself")
      for (const f of PAGE_FILES) fs.copyFileSync(path.join(ASSETS, f), path.join(out, f))
      writeFileAtomic(path.join(out, "data.js"), indexScript(index))
      const frames = new Set<string>()
      for (const log of index.logs) {
        const episodes = readLog(runDir, index, log.key) ?? []
        writeFileAtomic(path.join(out, "episodes", `${log.key}.js`), logScript(log.key, episodes))
        for (const e of episodes) for (const s of e.steps) if (s.frame !== null) frames.add(s.frame)
      }
      for (const rel of [...index.plots, ...frames]) {
        const file = safeFile(runDir, `/${rel}`, SERVED_DIRS)
        if (file === undefined) continue
        fs.mkdirSync(path.dirname(path.join(out, rel)), { recursive: true })
        fs.copyFileSync(file, path.join(out, rel))
      }
      return { index, frames: frames.size }
    },
    catch: (e) => new ViewError({ message: `cannot write the page to ${out}: ${(e as Error).message}` })
  })
