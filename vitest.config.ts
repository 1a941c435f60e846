import { defineConfig } from "vitest/config"

/** Whole runs, training, the CLI in child processes, the browser and the cluster: minutes. */
const INTEGRATION = [
  "test/app/plugins.test.ts",
  "test/app/resume.test.ts",
  "test/app/run.test.ts",
  "test/app/sharding.test.ts",
  "test/app/train.test.ts",
  "test/cli/**/*.test.ts",
  "test/view/**/*.test.ts",
  "test/plugins/policy/tfjs.test.ts"
]

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    // `npm test -- --project unit`: the logic alone, under a minute; `--project integration`: the rest
    projects: [
      { extends: true, test: { name: "unit", include: ["test/**/*.test.ts"], exclude: INTEGRATION } },
      { extends: true, test: { name: "integration", include: INTEGRATION } }
    ]
  }
})
