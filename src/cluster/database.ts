import { LibsqlClient } from "@effect/sql-libsql"
import { busyTolerantClient } from "./sqlite.ts"
import { PgClient } from "@effect/sql-pg"
import { SqlClient } from "@effect/sql"
import { Data, Effect, Layer, Redacted } from "effect"
import * as path from "node:path"

/** A database a cluster keeps its jobs in that cannot be used as given; never shows a password. */
export class DatabaseError extends Data.TaggedError("DatabaseError")<{ readonly message: string }> {
  override toString(): string {
    return this.message
  }
}

export interface DatabaseUrl {
  readonly kind: "postgres" | "sqlite"
  /** The URL as given (may hold a password: never print it). */
  readonly url: Redacted.Redacted<string>
  /** The URL with its password replaced by ***: the one to print. */
  readonly shown: string
  /** For SQLite: the database file. */
  readonly file?: string
}

/**
 * Reads `--db`: `postgres://user:password@host:port/db` (or postgresql://) for machines that share
 * one server, `sqlite:PATH` (or `file:PATH`) for one machine with no server to start.
 */
export const parseDatabaseUrl = (raw: string): Effect.Effect<DatabaseUrl, DatabaseError> => {
  const trimmed = raw.trim()
  const sqlite = /^(sqlite|file):(.+)$/.exec(trimmed)
  if (sqlite !== null) {
    const file = path.resolve(sqlite[2]!.replace(/^\/\/(?=\/)/, ""))
    return Effect.succeed({ kind: "sqlite", url: Redacted.make(`file:${file}`), shown: `sqlite:${file}`, file })
  }
  if (/^postgres(ql)?:\/\//.test(trimmed)) {
    let parsed: URL
    try {
      parsed = new URL(trimmed)
    } catch {
      return Effect.fail(new DatabaseError({ message: `--db: not a valid PostgreSQL URL: ${redactUrl(trimmed)}` }))
    }
    if (parsed.pathname.length <= 1) {
      return Effect.fail(new DatabaseError({ message: `--db ${redactUrl(trimmed)}: name the database (postgres://user:password@host:port/DATABASE)` }))
    }
    return Effect.succeed({ kind: "postgres", url: Redacted.make(trimmed), shown: redactUrl(trimmed) })
  }
  return Effect.fail(
    new DatabaseError({
      message: `--db ${JSON.stringify(redactUrl(trimmed))}: use postgres://user:password@host:port/db (many machines) or sqlite:PATH (one machine)`
    })
  )
}

/** The URL with any password replaced by *** (also when the URL does not parse). */
export const redactUrl = (url: string): string => {
  try {
    const u = new URL(url)
    if (u.password !== "") u.password = "***"
    return u.toString()
  } catch {
    return url.replace(/(\/\/[^:/@]*:)[^@]*@/, "$1***@")
  }
}

/** Any text with the URL's password taken out (error messages of drivers may quote it). */
export const scrub = (db: DatabaseUrl, text: string): string => {
  const raw = Redacted.value(db.url)
  let out = text.split(raw).join(db.shown)
  try {
    const password = decodeURIComponent(new URL(raw).password)
    if (password !== "") out = out.split(password).join("***")
    const encoded = new URL(raw).password
    if (encoded !== "") out = out.split(encoded).join("***")
  } catch {
    // not a URL with a password
  }
  return out
}

/** The SQL client for a database URL. */
export const sqlLayer = (db: DatabaseUrl): Layer.Layer<SqlClient.SqlClient, DatabaseError> => {
  const layer: Layer.Layer<SqlClient.SqlClient, unknown> = db.kind === "postgres"
    ? PgClient.layer({ url: db.url, applicationName: "virl", connectTimeout: "10 seconds" })
    // 64-bit message ids need bigint; several processes on one file wait for each other's writes (sqlite.ts)
    : Layer.unwrapScoped(
      Effect.acquireRelease(
        Effect.try({
          try: () => busyTolerantClient(db.file!),
          catch: (e) => new DatabaseError({ message: `cannot open the database ${db.shown}: ${String(e)}` })
        }),
        (client) => Effect.sync(() => client.close())
      ).pipe(Effect.map((liveClient) => LibsqlClient.layer({ liveClient, intMode: "bigint" })))
    )
  // a DatabaseError says it already; anything else from a driver is named here (password scrubbed)
  return layer.pipe(
    Layer.mapError((e) => (e instanceof DatabaseError ? e : new DatabaseError({ message: `cannot open the database ${db.shown}: ${scrub(db, String(e))}` })))
  )
}
