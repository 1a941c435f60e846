/**
 * sin, cos, atan2 and asin as CPython computes them: the platform C library's, through the small
 * addon in native/libm (built at install by scripts/build-libm.mjs). The reference's headings are
 * CPython's `math` module on glibc; V8's own functions differ from glibc's in the last bit on a few
 * per cent of arguments, and the bearing formula turns that into ~1e-8° between close geocodes.
 *
 * Where the addon is missing (no C compiler at install) or `VIRL_LIBM=js`, correctly rounded JS
 * versions stand in: they match glibc on all but ~0.1 % of arguments.
 */
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as exact from "./exact-trig.ts"
import { textSetting } from "../../core/settings.ts"

export interface Libm {
  readonly sin: (x: number) => number
  readonly cos: (x: number) => number
  readonly atan2: (y: number, x: number) => number
  readonly asin: (x: number) => number
}

const fallback: Libm = { sin: exact.sin, cos: exact.cos, atan2: Math.atan2, asin: Math.asin }

const here = path.dirname(fileURLToPath(import.meta.url))
export const ADDON_PATH = path.resolve(here, "../../../native/libm/build/virl_libm.node")

const load = (): { readonly libm: Libm; readonly native: boolean } => {
  if (textSetting("VIRL_LIBM") === "js") return { libm: fallback, native: false }
  try {
    const addon = createRequire(import.meta.url)(ADDON_PATH) as Libm
    return { libm: addon, native: true }
  } catch {
    return { libm: fallback, native: false }
  }
}

const loaded = load()

export const libm: Libm = loaded.libm
/** Whether the platform's own libm is in use (false: the JS stand-ins). */
export const nativeLibm: boolean = loaded.native
