import * as path from "node:path"

/** The reference cases shipped beside the checkout (../shared/fixtures/virl-reference). */
export const FIXTURES = path.resolve(import.meta.dirname, "../../../shared/fixtures/virl-reference")
export const FIXTURE_DATASET = path.join(FIXTURES, "dataset")
