// For CI (.ci/run): Debian packages the tests drive — chromium (the viewer's browser test) and
// postgresql (the cluster's test starts a server on loopback). Installs what is missing with
// apt-get when this user may (root, or sudo without a password); otherwise says how. `npm test`
// itself installs nothing: it skips those tests, naming the missing package.
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"

const chromium = process.env.VIRL_CHROMIUM ?? "/usr/bin/chromium"
const hasPostgres = fs.existsSync("/usr/lib/postgresql") && fs.readdirSync("/usr/lib/postgresql").some((v) => fs.existsSync(`/usr/lib/postgresql/${v}/bin/initdb`))
const missing = [...(fs.existsSync(chromium) ? [] : ["chromium"]), ...(hasPostgres ? [] : ["postgresql"])]
if (missing.length === 0) process.exit(0)
const has = (cmd) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0
const root = process.getuid?.() === 0
const sudo = !root && has("sudo") && spawnSync("sudo", ["-n", "true"]).status === 0
if (!has("apt-get") || (!root && !sudo)) {
  console.warn(`virl: ${missing.join(" and ")} missing and cannot be installed from here; apt-get install ${missing.join(" ")} (or set VIRL_CHROMIUM)`)
  process.exit(0)
}
const run = (args) => execFileSync(root ? args[0] : "sudo", root ? args.slice(1) : args, { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } })
console.log(`virl: installing Debian's ${missing.join(" and ")} for the tests (once)`)
try {
  run(["apt-get", "update", "-qq"])
  run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...missing])
} catch (e) {
  console.warn(`virl: apt-get could not install ${missing.join(" ")} (${e.message.split("\n")[0]}); the tests that need them will say what is missing`)
}
