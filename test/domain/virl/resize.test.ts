import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { resizeBicubic } from "../../../src/domain/virl/resize.ts"

// Pillow 9.4's Image.resize (default bicubic) of one image, recorded by test/fixtures/record/pillow-resize.ts
const dir = path.resolve(import.meta.dirname, "../../fixtures/pillow-resize")

describe("resizeBicubic", () => {
  it.each([
    [300, 211],
    [57, 44],
    [160, 31],
    [32, 32]
  ])("matches Pillow's Image.resize byte for byte at %ix%i", (ow, oh) => {
    const rgb = new Uint8Array(fs.readFileSync(path.join(dir, "input-160x120.rgb")))
    const ours = resizeBicubic({ width: 160, height: 120, rgb }, ow, oh)
    expect(Buffer.from(ours.rgb).equals(fs.readFileSync(path.join(dir, `pillow-${ow}x${oh}.rgb`)))).toBe(true)
  })
})
