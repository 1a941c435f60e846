import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { simdKernels, simdTile } from "../../../src/domain/virl/pixels.ts"
import { perspectiveView } from "../../../src/domain/virl/projection.ts"
import { resizeBicubic } from "../../../src/domain/virl/resize.ts"
import { TilePool } from "../../../src/domain/virl/tile-pool.ts"
import { PythonRandom } from "../../../src/plugins/random/python-random.ts"

const ROOT = path.resolve(import.meta.dirname, "../../..")

/** A panorama with smooth structure and noise (both matter to the filters' rounding). */
const panorama = (rng: PythonRandom, width: number, height: number) => {
  const rgb = new Uint8Array(width * height * 3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        const wave = 127 + 100 * Math.sin((x * (c + 1)) / 9 + y / 7)
        rgb[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(wave + (rng.random() - 0.5) * 90)))
      }
    }
  }
  return { width, height, rgb }
}

describe("WebAssembly SIMD street-view kernels", () => {
  it("load here (Node 20 has WebAssembly SIMD)", () => {
    expect(simdKernels()).toBe(true)
  })

  it("write the same bytes as the JavaScript kernels: views, enlarging, shrinking, into a grid cell", () => {
    const rng = new PythonRandom(5)
    let cases = 0
    for (
      const [panoWidth, panoHeight] of [
        [400, 200],
        [257, 129]
      ]
    ) {
      const pano = panorama(rng, panoWidth, panoHeight)
      for (const view of [64, 97]) {
        for (const resolution of [view, 17, 50, 131]) {
          for (const fov of [60, 90]) {
            const request = { heading: rng.random() * 360, fov, width: view, height: view, northRotation: rng.random() * 360 - 180 }
            const expected = resizeBicubic(perspectiveView(pano, request), resolution, resolution)
            const ours = simdTile(pano, request, resolution, undefined, `pano-${panoWidth}`)
            expect(ours).toBeDefined()
            expect(Buffer.from(ours!.rgb).equals(Buffer.from(expected.rgb))).toBe(true)
            // into the lower right cell of a 2×2 grid with a 5-pixel separator: nothing outside it moves
            const side = 2 * resolution + 5
            const target = (fill: number) => ({
              rgb: new Uint8Array(side * side * 3).fill(fill),
              stride: side * 3,
              offset: ((resolution + 5) * side + resolution + 5) * 3
            })
            const js = target(7)
            resizeBicubic(perspectiveView(pano, request), resolution, resolution, js)
            const wasm = target(7)
            simdTile(pano, request, resolution, wasm, `pano-${panoWidth}`)
            expect(Buffer.from(wasm.rgb).equals(Buffer.from(js.rgb))).toBe(true)
            cases++
          }
        }
      }
    }
    expect(cases).toBe(32)
  })

  it("leave a view that wraps vertically to the JavaScript kernels", () => {
    const pano = panorama(new PythonRandom(1), 128, 64)
    expect(simdTile(pano, { heading: 10, fov: 179, width: 48, height: 48, northRotation: 0 }, 24)).toBeUndefined()
  })

  it("are what their source compiles to (npm run build:kernels)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "virl-kernels-"))
    const out = path.join(dir, "pixels.wasm")
    execFileSync(process.execPath, [path.join(ROOT, "scripts/build-kernels.mjs"), out], { cwd: ROOT })
    expect(fs.readFileSync(out).equals(fs.readFileSync(path.join(ROOT, "src/domain/virl/pixels.wasm")))).toBe(true)
    fs.rmSync(dir, { recursive: true, force: true })
  })
})

describe("TilePool.sharedBuffer", () => {
  const pool = new TilePool(1)
  afterAll(() => pool.close())

  it("hands out fresh zeroed buffers, large ones prepared by a worker ahead of time", async () => {
    const seen: SharedArrayBuffer[] = []
    for (const bytes of [1000, 3 << 20, 3 << 20, 3 << 20]) {
      const buffer = pool.sharedBuffer(bytes)
      expect(buffer.byteLength).toBe(bytes)
      expect(new Uint8Array(buffer).every((b) => b === 0)).toBe(true)
      expect(seen.includes(buffer)).toBe(false)
      new Uint8Array(buffer).fill(9)
      seen.push(buffer)
      // a tile, after which the idle worker prepares the next buffer
      const pano = { width: 64, height: 32, rgb: new Uint8Array(new SharedArrayBuffer(64 * 32 * 3)) }
      const grid = new Uint8Array(new SharedArrayBuffer(21 * 21 * 3))
      await pool.render({
        pano,
        panoKey: "p",
        rotation: 0,
        heading: 30,
        fov: 90,
        viewSize: 16,
        resolution: 8,
        target: { grid, gridWidth: 21, left: 0, top: 0 }
      })
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })
})
