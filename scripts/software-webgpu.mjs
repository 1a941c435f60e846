// WebGPU on the CPU, for tests on machines without a GPU (CI): Dawn (npm `webgpu`, prebuilt) over
// Mesa's lavapipe, a software Vulkan driver. Debian bookworm's lavapipe (22.3) lacks a feature
// Dawn requires; bookworm-backports' (25.0) has it. Nothing is installed system-wide:
//   - webgpu and @tensorflow/tfjs-backend-webgpu into the project's node_modules (npm install --no-save,
//     as scripts/gpu/prepare.sh bundles them for a GPU machine);
//   - lavapipe and the Vulkan loader unpacked (dpkg -x) under <cache>/software-webgpu/root, with
//     their libraries that this system lacks, and an ICD file naming the driver there.
// It writes <cache>/software-webgpu/env.json: the LD_LIBRARY_PATH and VK_DRIVER_FILES a process
// needs to find the driver (test/support/software-webgpu.ts starts its checks with them).
// Best effort: on failure it says why and exits 0, and the tests that need it skip, naming it.
//   node scripts/software-webgpu.mjs
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const dir = path.join(process.env.VIRL_CACHE ?? path.join(os.homedir(), ".cache", "virl"), "software-webgpu")
const say = (m) => console.log(`software-webgpu: ${m}`)
const giveUp = (m) => {
  console.warn(`software-webgpu: not prepared — ${m}; the WebGPU tests will skip`)
  process.exit(0)
}

const require = createRequire(path.join(root, "package.json"))
const resolvable = (name) => {
  try {
    require.resolve(name)
    return true
  } catch {
    return false
  }
}
if (!resolvable("webgpu") || !resolvable("@tensorflow/tfjs-backend-webgpu")) {
  say("npm install --no-save webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0")
  const npm = spawnSync("npm", ["install", "--no-save", "--no-audit", "--no-fund", "--ignore-scripts", "webgpu@0.6.2", "@tensorflow/tfjs-backend-webgpu@4.22.0"], {
    cwd: root,
    stdio: "inherit"
  })
  if (npm.status !== 0) giveUp("npm could not install webgpu")
}

const lib = path.join(dir, "root", "usr", "lib", "x86_64-linux-gnu")
const driver = path.join(lib, "libvulkan_lvp.so")
const envFile = path.join(dir, "env.json")
if (fs.existsSync(envFile) && fs.existsSync(driver)) {
  say(`ready (${envFile})`)
  process.exit(0)
}
if (process.arch !== "x64" || process.platform !== "linux") giveUp(`this is ${process.platform}-${process.arch}, the recipe is for Debian amd64`)
if (spawnSync("sh", ["-c", "command -v apt-get && command -v dpkg"]).status !== 0) giveUp("apt-get and dpkg are needed to fetch Mesa")

const work = path.join(dir, "work")
fs.rmSync(work, { recursive: true, force: true })
fs.mkdirSync(path.join(work, "lists", "partial"), { recursive: true })
fs.writeFileSync(
  path.join(work, "sources.list"),
  "deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian bookworm-backports main\n"
)
const apt = [
  "-oAPT::Architecture=amd64",
  "-oAPT::Architectures=amd64",
  `-oDir::State::Lists=${path.join(work, "lists")}`,
  `-oDir::Etc::SourceList=${path.join(work, "sources.list")}`,
  "-oDir::Etc::SourceParts=/nonexistent",
  "-oDebug::NoLocking=1",
  "-qq"
]
const run = (cmd, args) => execFileSync(cmd, args, { cwd: work, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
try {
  say("fetching Mesa's lavapipe (bookworm-backports) and the Vulkan loader")
  run("apt-get", [...apt, "update"])
  // the driver's own dependencies that this system lacks come along (one level: the rest are the base system's)
  const depends = run("apt-cache", [...apt, "depends", "--no-recommends", "--no-suggests", "mesa-vulkan-drivers/bookworm-backports"])
    .split("\n")
    .flatMap((l) => (/^\s*\|?Depends: ([a-z0-9][a-z0-9.+-]*)$/.exec(l)?.slice(1) ?? []))
  const installed = (p) => spawnSync("dpkg-query", ["-W", "-f=${Status}", p], { encoding: "utf8" }).stdout.includes("install ok installed")
  const wanted = ["mesa-vulkan-drivers/bookworm-backports", "libvulkan1", ...depends.filter((p) => p !== "libvulkan1" && !installed(p))]
  run("apt-get", [...apt, "download", ...new Set(wanted)])
  fs.rmSync(path.join(dir, "root"), { recursive: true, force: true })
  for (const deb of fs.readdirSync(work).filter((f) => f.endsWith(".deb"))) run("dpkg", ["-x", deb, path.join(dir, "root")])
} catch (e) {
  giveUp(`apt-get/dpkg failed: ${String(e.stderr || e.message).trim().split("\n").pop()}`)
}
if (!fs.existsSync(driver)) giveUp(`${driver} is not in the package`)
const missing = spawnSync("ldd", [driver], { encoding: "utf8", env: { ...process.env, LD_LIBRARY_PATH: lib } }).stdout.split("\n").filter((l) =>
  l.includes("not found")
)
if (missing.length > 0) giveUp(`the driver needs libraries this system lacks: ${missing.map((l) => l.trim()).join(", ")}`)
const icd = path.join(dir, "lvp_icd.json")
fs.writeFileSync(icd, JSON.stringify({ file_format_version: "1.0.0", ICD: { library_path: driver, api_version: "1.3.0" } }, null, 2))
fs.writeFileSync(`${envFile}.tmp`, JSON.stringify({ LD_LIBRARY_PATH: lib, VK_DRIVER_FILES: icd }, null, 2))
fs.renameSync(`${envFile}.tmp`, envFile)
fs.rmSync(work, { recursive: true, force: true })
say(`ready (${envFile})`)
