import { Data, Effect } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { writeFileAtomic } from "../../core/files.ts"
import { indexScript, logScript, readIndex, readLog, type ViewIndex } from "./bundle.ts"

/**
 * `virl view`: the run's page served on loopback, or written out as static files. The server
 * answers the page's own assets, the data scripts, and files under the run's plots/ and frames/
 * only — a path that leaves the run folder (`..`, encoded or not, or a symlink pointing out) is
 * refused — to requests for its own address, and no other origin's page may read its answers
 * (Cross-Origin-Resource-Policy: same-origin).
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
  // no other page may read what this one serves: its data comes as scripts (so that the exported
  // copy opens from disk), and a script of another origin would otherwise run for any page
  "Cross-Origin-Resource-Policy": "same-origin",
  "Cross-Origin-Opener-Policy": "same-origin",
  "X-Frame-Options": "DENY",
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

/**
 * Whether a request's Host names this server: an IP address, `localhost` or this machine's own
 * name, with the port it listens on. A name anyone can point at 127.0.0.1 (DNS rebinding) is not.
 */
export const hostAllowed = (host: string | undefined, port: number, machine = os.hostname()): boolean => {
  if (host === undefined) return false
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d+))?$/.exec(host.trim())
  if (m === null) return false
  const name = m[1]!.toLowerCase()
  if ((m[2] === undefined ? 80 : Number(m[2])) !== port) return false
  return net.isIP(name.replace(/^\[|\]$/g, "")) !== 0 || name === "localhost" || name === machine.toLowerCase()
}

interface Answer {
  readonly status: number
  readonly type: string
  readonly body: string | Buffer
}

const text = (status: number, body: string): Answer => ({ status, type: "text/plain; charset=utf-8", body })

/**
 * The server's answers. With `port` (the port it listens on), requests whose Host is not this
 * server's address are refused; a request whose answer fails (a file gone mid-request) gets 500
 * and the server goes on.
 */
export const handler = (runDir: string, options: { readonly port?: () => number } = {}) => {
  let cached: { at: number; index: ViewIndex } | undefined
  // the index is re-read at most every 2 s, so a page reloaded during a run shows new episodes
  const index = () => {
    if (cached === undefined || Date.now() - cached.at > 2000) cached = { at: Date.now(), index: readIndex(runDir) }
    return cached.index
  }
  const answer = (req: http.IncomingMessage): Answer => {
    if (req.method !== "GET" && req.method !== "HEAD") return text(405, "method not allowed\n")
    if (options.port !== undefined && !hostAllowed(req.headers.host, options.port())) {
      return text(421, "this server answers requests for its own address only\n")
    }
    const p = new URL(req.url ?? "/", "http://localhost").pathname
    if (p === "/" || p === "/index.html") return { status: 200, type: TYPES[".html"]!, body: fs.readFileSync(path.join(ASSETS, "index.html")) }
    if (p === "/viewer.js" || p === "/viewer.css") return { status: 200, type: TYPES[path.extname(p)]!, body: fs.readFileSync(path.join(ASSETS, p.slice(1))) }
    if (p === "/data.js") return { status: 200, type: TYPES[".js"]!, body: indexScript(index()) }
    const episodes = /^\/episodes\/([A-Za-z0-9_.-]+)\.js$/.exec(p)
    if (episodes !== null) {
      const log = readLog(runDir, index(), episodes[1]!)
      return log === undefined ? text(404, "no such evaluation log\n") : { status: 200, type: TYPES[".js"]!, body: logScript(episodes[1]!, log) }
    }
    const file = safeFile(runDir, p, SERVED_DIRS)
    if (file === undefined) return text(404, "not found\n")
    return { status: 200, type: TYPES[path.extname(file)] ?? "application/octet-stream", body: fs.readFileSync(file) }
  }
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    let a: Answer
    try {
      a = answer(req)
    } catch (e) {
      a = text(500, `cannot answer ${req.url ?? "/"}: ${e instanceof Error ? e.message : String(e)}\n`)
    }
    res.writeHead(a.status, { "Content-Type": a.type, "Cache-Control": "no-store", ...SECURITY })
    res.end(req.method === "HEAD" ? undefined : a.body)
  }
}

/** Serves the page until interrupted; resolves with the address once listening. */
export const serve = (runDir: string, options: { readonly port: number; readonly host: string }) =>
  Effect.async<http.Server, ViewError>((resume) => {
    let port = options.port
    const server = http.createServer(handler(runDir, { port: () => port }))
    server.once("error", (e) => resume(Effect.fail(new ViewError({ message: `cannot listen on ${options.host}:${options.port}: ${e.message}` }))))
    server.listen(options.port, options.host, () => {
      port = (server.address() as net.AddressInfo).port
      resume(Effect.succeed(server))
    })
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
