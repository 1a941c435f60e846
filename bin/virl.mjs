#!/usr/bin/env node
// Runs the TypeScript CLI directly: users need no build step. The CommonJS hook lets require()
// load ES-module files (tfjs-core's gradient registry) as well.
import { register as registerCjs } from "tsx/cjs/api"
import { register } from "tsx/esm/api"

registerCjs()
register()
await import("../src/cli/main.ts")
