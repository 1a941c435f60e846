// A PostgreSQL server of Debian's package on loopback, for a cluster on one machine and for the
// cluster's tests:
//   node scripts/postgres.mjs start [--port 5433] [--password virl]   (prints the --db URL)
//   node scripts/postgres.mjs stop  [--port 5433]
// Its data lives in $TMPDIR/virl-postgres-PORT. As root the server runs as the `postgres` user
// (PostgreSQL refuses root). Install the server with `apt-get install postgresql`.
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"

/** The folder of Debian's PostgreSQL programs (the newest version installed), or undefined. */
export const postgresBin = () => {
  const root = "/usr/lib/postgresql"
  if (!fs.existsSync(root)) return undefined
  const versions = fs
    .readdirSync(root)
    .filter((v) => fs.existsSync(path.join(root, v, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a))
  return versions.length === 0 ? undefined : path.join(root, versions[0], "bin")
}

const asServerUser = (bin, args, options = {}) => {
  const root = process.getuid?.() === 0
  const [cmd, argv] = root ? ["runuser", ["-u", "postgres", "--", bin, ...args]] : [bin, args]
  return execFileSync(cmd, argv, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8", ...options })
}

export const dataDir = (port) => path.join(os.tmpdir(), `virl-postgres-${port}`)

/**
 * Starts a server on 127.0.0.1:port with a user and a database named virl (password `password`),
 * creating its data folder on first use; returns the URL to pass as --db.
 */
export const startPostgres = ({ port = 5433, password = "virl" } = {}) => {
  const bin = postgresBin()
  if (bin === undefined) throw new Error("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb): apt-get install postgresql")
  const dir = dataDir(port)
  const root = process.getuid?.() === 0
  if (!fs.existsSync(path.join(dir, "PG_VERSION"))) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    const pwfile = path.join(os.tmpdir(), `virl-postgres-${port}.pw`)
    fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o644 })
    if (root) execFileSync("chown", ["postgres:postgres", dir, pwfile])
    try {
      asServerUser(path.join(bin, "initdb"), ["-D", dir, "-U", "virl", `--pwfile=${pwfile}`, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"])
    } finally {
      fs.rmSync(pwfile, { force: true })
    }
  }
  const status = spawnSync(root ? "runuser" : path.join(bin, "pg_ctl"), [...(root ? ["-u", "postgres", "--", path.join(bin, "pg_ctl")] : []), "-D", dir, "status"], { encoding: "utf8" })
  if (status.status !== 0) {
    asServerUser(path.join(bin, "pg_ctl"), ["-D", dir, "-l", path.join(dir, "server.log"), "-w", "-t", "60", "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "start"])
  }
  const exists = asServerUser(path.join(bin, "psql"), ["-h", dir, "-p", String(port), "-U", "virl", "-d", "postgres", "-tAc", "SELECT 1 FROM pg_database WHERE datname = 'virl'"]).trim()
  if (exists !== "1") asServerUser(path.join(bin, "createdb"), ["-h", dir, "-p", String(port), "-U", "virl", "virl"])
  return `postgres://virl:${encodeURIComponent(password)}@127.0.0.1:${port}/virl`
}

/** Stops the server on `port` (fast shutdown) and, with `remove`, deletes its data. */
export const stopPostgres = ({ port = 5433, remove = false } = {}) => {
  const bin = postgresBin()
  const dir = dataDir(port)
  if (bin !== undefined && fs.existsSync(path.join(dir, "PG_VERSION"))) {
    try {
      asServerUser(path.join(bin, "pg_ctl"), ["-D", dir, "-m", "fast", "-w", "stop"])
    } catch {
      // not running
    }
  }
  if (remove) fs.rmSync(dir, { recursive: true, force: true })
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [command, ...rest] = process.argv.slice(2)
  const flag = (name, fallback) => {
    const i = rest.indexOf(`--${name}`)
    return i >= 0 && rest[i + 1] !== undefined ? rest[i + 1] : fallback
  }
  const port = Number(flag("port", "5433"))
  try {
    if (command === "start") console.log(startPostgres({ port, password: flag("password", "virl") }))
    else if (command === "stop") stopPostgres({ port, remove: rest.includes("--remove") })
    else {
      console.error("usage: node scripts/postgres.mjs start|stop [--port 5433] [--password virl] [--remove]")
      process.exit(2)
    }
  } catch (e) {
    console.error(`postgres: ${String(e.stderr ?? e.message).trim()}`)
    process.exit(1)
  }
}
