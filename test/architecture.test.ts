import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { ENVIRONMENT_VARIABLES } from "../src/core/settings.ts"

/** The layout ARCHITECTURE.md asks for, checked on the sources' import statements (type imports too). */
const SRC = path.resolve(import.meta.dirname, "../src")

const sources = (dir: string): string[] =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((
    e
  ) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []))

const IMPORT = /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^"';]*?\sfrom\s+)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g

/** Each source's relative imports that name another source. */
const graph = (files: ReadonlyArray<string>): Map<string, string[]> =>
  new Map(
    files.map((file) => {
      const text = fs.readFileSync(file, "utf8")
      const deps = [...text.matchAll(IMPORT)]
        .map((m) => m[1] ?? m[2] ?? "")
        .filter((spec) => spec.startsWith("."))
        .map((spec) => path.resolve(path.dirname(file), spec))
        .filter((target) => files.includes(target))
      return [file, [...new Set(deps)]]
    })
  )

/** Strongly connected components of more than one file (Tarjan): the import cycles. */
const cycles = (g: ReadonlyMap<string, ReadonlyArray<string>>): string[][] => {
  let counter = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const out: string[][] = []
  const visit = (v: string) => {
    index.set(v, counter)
    low.set(v, counter++)
    stack.push(v)
    onStack.add(v)
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      if (component.length > 1) out.push(component.map((f) => path.relative(SRC, f)).sort())
    }
  }
  for (const v of g.keys()) if (!index.has(v)) visit(v)
  return out
}

describe("the source layout", () => {
  const files = sources(SRC)
  const g = graph(files)

  it("has no import cycles, type imports included", () => {
    expect(cycles(g)).toEqual([])
  })

  it("finds a cycle when there is one (the check can fail)", () => {
    const [a, b, c, d] = ["a.ts", "b.ts", "c.ts", "d.ts"].map((f) => path.join(SRC, f)) as [string, string, string, string]
    expect(cycles(new Map([[a, [b]], [b, [c]], [c, [a]], [d, [a]]]))).toEqual([["a.ts", "b.ts", "c.ts"]])
  })

  it("keeps core free of plugins, the app and the CLI; plugins free of the app and the CLI; the V-IRL domain on core alone; the cluster free of all of them", () => {
    const wrong = [...g.entries()].flatMap(([file, deps]) => {
      const from = path.relative(SRC, file)
      return deps
        .map((d) => path.relative(SRC, d))
        .filter((to) =>
          (from.startsWith("core/") && !to.startsWith("core/")) ||
          (from.startsWith("plugins/") && (to.startsWith("app/") || to.startsWith("cli/") || to.startsWith("cluster/"))) ||
          (from.startsWith("cluster/") && !to.startsWith("cluster/")) ||
          (from.startsWith("domain/") && !to.startsWith("domain/") && !to.startsWith("core/"))
        )
        .map((to) => `${from} -> ${to}`)
    })
    expect(wrong).toEqual([])
  })

  it("has no source file over 500 lines (a room a newcomer can read through)", () => {
    const long = files.map((f) => [path.relative(SRC, f), fs.readFileSync(f, "utf8").split("\n").length - 1] as const).filter(([, n]) => n > 500)
    expect(long).toEqual([])
  })

  it("reads environment variables through core/settings.ts alone, and docs/configuration.md lists each", () => {
    // settings.ts reads them through Effect's Config; nothing reads process.env itself
    const readers = files.filter((f) => /process\.env(\[|\.[A-Z])/.test(fs.readFileSync(f, "utf8"))).map((f) => path.relative(SRC, f))
    expect(readers).toEqual([])
    const docs = fs.readFileSync(path.resolve(SRC, "../docs/configuration.md"), "utf8")
    expect(Object.keys(ENVIRONMENT_VARIABLES).filter((name) => !docs.includes(`\`${name}\``))).toEqual([])
  })
})
