import * as fs from "node:fs"
// @ts-expect-error: a plain JS script (no types)
import { postgresBin } from "../../scripts/postgres.mjs"

/**
 * Debian packages some tests drive: Chromium (the viewer's browser test) and PostgreSQL (the
 * cluster's test starts a server on loopback). `npm test` installs nothing: a test whose package
 * is missing says which and skips — unless VIRL_TEST_REQUIRE_ALL=1 (CI: .ci/run installs both
 * and sets it), where a missing package fails the test instead.
 */
export const CHROMIUM = process.env["VIRL_CHROMIUM"] ?? "/usr/bin/chromium"

const REQUIRE_ALL = process.env["VIRL_TEST_REQUIRE_ALL"] === "1"

const missingPackage = (name: "chromium" | "postgresql"): string | undefined => {
  if (name === "chromium") return fs.existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium, or VIRL_CHROMIUM=/path/to/chromium)`
  return (postgresBin() as string | undefined) === undefined ? "PostgreSQL's server is missing (apt-get install postgresql)" : undefined
}

/** Whether tests needing `name` skip here; says why once, on stderr. Throws where every test must run. */
export const skipWithout = (name: "chromium" | "postgresql", what: string): boolean => {
  const missing = missingPackage(name)
  if (missing === undefined) return false
  if (REQUIRE_ALL) throw new Error(`${what} needs Debian's ${name}: ${missing}; VIRL_TEST_REQUIRE_ALL=1 forbids skipping it`)
  console.warn(`skipped: ${what} needs Debian's ${name}: ${missing}`)
  return true
}
