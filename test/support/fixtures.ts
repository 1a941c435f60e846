import * as path from "node:path"

/**
 * The reference cases (recorded by running the reference implementation; a copy of
 * ../shared/fixtures/virl-reference kept in the repo so that a bare clone tests on its own), plus
 * cases of our own making in the same layout (files named `<kind>.<what>.json`).
 */
export const FIXTURES = path.resolve(import.meta.dirname, "../fixtures/virl-reference")
export const FIXTURE_DATASET = path.join(FIXTURES, "dataset")
