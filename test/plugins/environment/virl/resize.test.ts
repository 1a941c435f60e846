import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { resizeBicubic } from "../../../../src/plugins/environment/virl/resize.ts"
import { PythonRandom } from "../../../../src/plugins/random/python-random.ts"

const python = "/usr/bin/python3"
const hasPillow = fs.existsSync(python) && spawnSync(python, ["-c", "import PIL"], { stdio: "ignore" }).status === 0

describe("resizeBicubic", () => {
  it.skipIf(!hasPillow)("matches Pillow's Image.resize byte for byte, enlarging and shrinking", () => {
    const rng = new PythonRandom(3)
    const [w, h] = [160, 120]
    const rgb = Uint8Array.from({ length: w * h * 3 }, (_, i) => Math.floor(rng.random() * 256 * (i % 7 === 0 ? 1 : 0.5) + (i % 5) * 20) % 256)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "virl-resize-"))
    fs.writeFileSync(path.join(dir, "in.raw"), rgb)
    for (const [ow, oh] of [[300, 211], [57, 44], [160, 31]]) {
      const script = `from PIL import Image; im=Image.frombytes('RGB',(${w},${h}),open('${dir}/in.raw','rb').read()); open('${dir}/out.raw','wb').write(im.resize((${ow},${oh})).tobytes())`
      expect(spawnSync(python, ["-c", script]).status).toBe(0)
      const ours = resizeBicubic({ width: w, height: h, rgb }, ow, oh)
      expect(Buffer.from(ours.rgb).equals(fs.readFileSync(path.join(dir, "out.raw")))).toBe(true)
    }
    fs.rmSync(dir, { recursive: true, force: true })
  })
})
