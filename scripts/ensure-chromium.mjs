// Before `npm test`: the viewer's browser test drives Debian's Chromium (headless). Installs the
// `chromium` package with apt-get when it is missing and this user may (root, or sudo without a
// password); otherwise says how, and the browser test fails naming what is missing.
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"

const wanted = process.env.VIRL_CHROMIUM ?? "/usr/bin/chromium"
if (fs.existsSync(wanted)) process.exit(0)
const has = (cmd) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0
const root = process.getuid?.() === 0
const sudo = !root && has("sudo") && spawnSync("sudo", ["-n", "true"]).status === 0
if (!has("apt-get") || (!root && !sudo)) {
  console.warn(`virl: ${wanted} is missing and cannot be installed from here; install Debian's chromium (apt-get install chromium) or set VIRL_CHROMIUM`)
  process.exit(0)
}
const run = (args) => execFileSync(root ? args[0] : "sudo", root ? args.slice(1) : args, { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } })
console.log("virl: installing Debian's chromium for the viewer's browser test (once)")
try {
  run(["apt-get", "update", "-qq"])
  run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"])
} catch (e) {
  console.warn(`virl: apt-get could not install chromium (${e.message.split("\n")[0]}); the browser test will say what is missing`)
}
