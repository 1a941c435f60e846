// Builds native/libm (the C library's sin/cos/atan2/asin for Node) at install time.
// Optional: without a C compiler or Node's headers the environment uses its JS fallback and says so
// once (`virl conformance` then may differ from the reference in the last bits of a few headings).
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..")
const source = path.join(root, "native", "libm", "libm.c")
const out = path.join(root, "native", "libm", "build", "virl_libm.node")
const headers = [
  process.env.npm_config_nodedir && path.join(process.env.npm_config_nodedir, "include", "node"),
  path.resolve(path.dirname(process.execPath), "..", "include", "node")
].filter((dir) => dir && fs.existsSync(path.join(dir, "node_api.h")))

const skip = (why) => {
  console.warn(`virl: native libm not built (${why}); headings use the JS fallback`)
  process.exit(0)
}

if (process.platform === "win32") skip("Windows: no build recipe")
if (headers.length === 0) skip("Node's headers (node_api.h) not found")
const compiler = process.env.CC ?? "cc"
const flags = ["-O2", "-fno-builtin", "-ffp-contract=off", "-shared", "-fPIC", `-I${headers[0]}`, "-DNODE_GYP_MODULE_NAME=virl_libm"]
if (process.platform === "darwin") flags.push("-undefined", "dynamic_lookup")
fs.mkdirSync(path.dirname(out), { recursive: true })
const tmp = `${out}.${process.pid}.tmp`
try {
  execFileSync(compiler, [...flags, source, "-o", tmp, "-lm"], { stdio: ["ignore", "inherit", "inherit"] })
  fs.renameSync(tmp, out)
} catch (error) {
  fs.rmSync(tmp, { force: true })
  skip(`${compiler} failed: ${error.message.split("\n")[0]}`)
}
