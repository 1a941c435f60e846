import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { type Experiment, isExperiment, isSweep, type Sweep } from "../core/experiment.ts"

/** Loads an experiment or sweep: the default export of a TypeScript file, no build step. */
export const loadExperimentFile = (file: string): Effect.Effect<Experiment | Sweep, Error> =>
  Effect.tryPromise({
    try: async () => {
      const full = path.resolve(file)
      if (!fs.existsSync(full)) throw new Error(`${file}: no such file`)
      const mod = (await import(pathToFileURL(full).href)) as { default?: unknown }
      const value = mod.default
      if (isSweep(value) || isExperiment(value)) return value
      throw new Error(`${file}: its default export is not an experiment or a sweep (use experiment({...}) or sweep({...}) from src/core/experiment.ts)`)
    },
    catch: (e) => (e instanceof Error ? e : new Error(String(e)))
  })
