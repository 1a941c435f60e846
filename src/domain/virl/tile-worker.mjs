// Worker entry: TypeScript needs tsx's loader registered in this thread too.
import { register } from "tsx/esm/api"

register()
await import("./tile-worker.ts")
