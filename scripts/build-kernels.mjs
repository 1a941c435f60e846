// Compiles the street-view kernels (native/kernels/pixels.ts, AssemblyScript) to WebAssembly
// SIMD: `npm run build:kernels` writes src/domain/virl/pixels.wasm, which the repo
// carries (a test checks that it is what this source compiles to); a path argument writes there.
import { main } from "assemblyscript/asc"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const out = process.argv[2] ?? path.join(root, "src/domain/virl/pixels.wasm")
const { error, stderr } = await main(
  [path.join(root, "native/kernels/pixels.ts"), "--outFile", out, "-O3", "--runtime", "stub", "--noAssert", "--enable", "simd"],
  {}
)
if (error) {
  console.error(stderr.toString())
  console.error(`build-kernels: ${error.message}`)
  process.exit(1)
}
