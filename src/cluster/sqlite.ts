import type * as Libsql from "@libsql/client"
import Database from "libsql"

/**
 * The local-file SQLite client the cluster's SQL storage talks to, for several processes on one
 * file (runners and submitters of one machine). @libsql/client opens connections without a busy
 * timeout (a write while another process writes fails at once with SQLITE_BUSY) and opens a new
 * one after each transaction, so a PRAGMA does not stay; this one sets on every connection a
 * busy timeout (a writer waits for the other's write to end) and write-ahead logging (readers
 * never wait), and runs each transaction on a connection of its own (BEGIN IMMEDIATE: it takes
 * the write lock first, so it never fails half-way to get it). Values convert as
 * @libsql/client's do with intMode "bigint".
 */

type Native = InstanceType<typeof Database>

/** How long a write waits for another process's write to end before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 15_000

const open = (file: string): Native => {
  const db = new Database(file)
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`)
  db.exec("PRAGMA journal_mode = WAL")
  db.exec("PRAGMA synchronous = NORMAL")
  return db
}

const toSql = (value: unknown): unknown => {
  if (typeof value === "number" && !Number.isFinite(value)) throw new RangeError("only finite numbers can be stored")
  if (typeof value === "boolean") return value ? 1n : 0n
  if (value instanceof ArrayBuffer) return Buffer.from(value)
  if (value instanceof Date) return value.valueOf()
  if (value === undefined) throw new TypeError("undefined cannot be passed as argument to the database")
  return value
}

const fromSql = (value: unknown): unknown => (value instanceof Buffer ? value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) : value)

const execute = (db: Native, stmt: Libsql.InStatement): Libsql.ResultSet => {
  const sql = typeof stmt === "string" ? stmt : stmt.sql
  const rawArgs = typeof stmt === "string" ? [] : (stmt.args ?? [])
  const args = Array.isArray(rawArgs)
    ? rawArgs.map(toSql)
    : Object.fromEntries(Object.entries(rawArgs).map(([k, v]) => [/^[@$:]/.test(k) ? k.slice(1) : k, toSql(v)]))
  const prepared = db.prepare(sql)
  prepared.safeIntegers(true)
  let returnsData = true
  try {
    prepared.raw(true)
  } catch {
    // raw() throws for a statement that returns no rows
    returnsData = false
  }
  if (returnsData) {
    const columns = prepared.columns().map((c: { name: string }) => c.name)
    const columnTypes = prepared.columns().map((c: { type: string | null }) => c.type ?? "")
    const rows = (prepared.all(args) as unknown[][]).map((values) => {
      const row: Record<string | number, unknown> = {}
      Object.defineProperty(row, "length", { value: values.length })
      values.forEach((v, i) => {
        const value = fromSql(v)
        row[i] = value
        if (!Object.hasOwn(row, columns[i]!)) Object.defineProperty(row, columns[i]!, { value, enumerable: true, configurable: true })
      })
      return row as unknown as Libsql.Row
    })
    return { columns, columnTypes, rows, rowsAffected: 0, lastInsertRowid: undefined, toJSON: () => ({ columns, rows }) }
  }
  const info = prepared.run(args) as { changes: number; lastInsertRowid: number | bigint }
  return { columns: [], columnTypes: [], rows: [], rowsAffected: info.changes, lastInsertRowid: BigInt(info.lastInsertRowid), toJSON: () => ({}) }
}

class Transaction {
  closed = false
  constructor(private readonly db: Native) {}
  async execute(stmt: Libsql.InStatement): Promise<Libsql.ResultSet> {
    return execute(this.db, stmt)
  }
  async batch(stmts: Array<Libsql.InStatement>): Promise<Array<Libsql.ResultSet>> {
    return stmts.map((s) => execute(this.db, s))
  }
  async executeMultiple(sql: string): Promise<void> {
    this.db.exec(sql)
  }
  async commit(): Promise<void> {
    try {
      this.db.exec("COMMIT")
    } finally {
      this.close()
    }
  }
  async rollback(): Promise<void> {
    try {
      if (this.db.inTransaction) this.db.exec("ROLLBACK")
    } finally {
      this.close()
    }
  }
  close(): void {
    if (this.closed) return
    this.closed = true
    this.db.close()
  }
}

/** A client on the file `file` (created when missing). */
export const busyTolerantClient = (file: string): Libsql.Client => {
  let db: Native | undefined = open(file)
  const current = (): Native => {
    if (db === undefined) throw new Error(`the database ${file} is closed`)
    return db
  }
  const client = {
    closed: false,
    protocol: "file",
    async execute(stmt: Libsql.InStatement) {
      return execute(current(), stmt)
    },
    async batch(stmts: Array<Libsql.InStatement>) {
      const tx = await client.transaction("write")
      try {
        const out = await tx.batch(stmts)
        await tx.commit()
        return out
      } catch (e) {
        await tx.rollback()
        throw e
      }
    },
    async migrate(stmts: Array<Libsql.InStatement>) {
      return client.batch(stmts)
    },
    async transaction(mode: Libsql.TransactionMode = "write") {
      const own = open(file)
      try {
        own.exec(mode === "read" ? "BEGIN DEFERRED" : "BEGIN IMMEDIATE")
      } catch (e) {
        own.close()
        throw e
      }
      return new Transaction(own)
    },
    async executeMultiple(sql: string) {
      current().exec(sql)
    },
    async sync() {
      return undefined
    },
    close() {
      db?.close()
      db = undefined
      client.closed = true
    }
  }
  return client as unknown as Libsql.Client
}
