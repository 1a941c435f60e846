import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { defaultExportPath, exportSafetensors } from "../app/export.ts"
import { reportError } from "./errors.ts"

export const exportCommand = Command.make(
  "export",
  {
    checkpoint: Args.directory({ name: "CHECKPOINT", exists: "yes" }),
    format: Options.choice("format", ["safetensors"]).pipe(Options.withDefault("safetensors" as const), Options.withDescription("file format")),
    out: Options.file("out").pipe(Options.optional, Options.withDescription("file to write (default: CHECKPOINT.safetensors, beside the folder)"))
  },
  ({ checkpoint, out }) =>
    Effect.gen(function*() {
      const file = Option.getOrElse(out, () => defaultExportPath(checkpoint))
      const r = yield* exportSafetensors(checkpoint, file)
      console.log(`wrote ${r.file}: ${r.tensors} tensors, ${r.values.toLocaleString("en-US")} float32 values, ${r.bytes.toLocaleString("en-US")} bytes`)
      if (!r.shaped) console.log("note: virl does not know this policy's shapes: every tensor is written flat")
    }).pipe(Effect.catchAll(reportError))
).pipe(
  Command.withDescription(
    "Export a checkpoint's weights as a safetensors file (names, shapes, float32; the policy's config in its metadata). " +
      "bench/torch_load.py puts them into the PyTorch model of bench/torch_policy.py."
  )
)
