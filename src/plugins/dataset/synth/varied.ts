import type { Rng } from "../../../core/random.ts"
import { PythonRandom } from "../../random/python-random.ts"
import type { Rgb } from "./brands.ts"
import { buildCity, uniform } from "./city.ts"
import { type CityStyle, STYLES } from "./styles.ts"

/**
 * City styles drawn from a style seed: palettes, building heights and widths, hills, sky,
 * lighting, sign frames, parked cars, trees and lamp posts, street-grid orientation, block
 * sizes and diagonal avenues. They make the broad mixture a base model is pretrained on, so a
 * drawn style is kept only if it is far from both styles the study holds out: `nyc` (the
 * post-training city) and `sf` (the visual-OOD city). `virl data synth --city varied:N` renders one.
 */
export const VARIED_PREFIX = "varied:"

const hsl = (h: number, s: number, l: number): Rgb => {
  const k = (n: number) => (n + h / 30) % 12
  const a = s * Math.min(l, 1 - l)
  const f = (n: number) => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)))
  return [Math.round(255 * f(0)), Math.round(255 * f(8)), Math.round(255 * f(4))]
}

const pick = <A>(rng: Rng, xs: ReadonlyArray<A>): A => xs[rng.choiceIndex(xs.length)]

const range = (rng: Rng, lo: [number, number], width: [number, number]): readonly [number, number] => {
  const a = uniform(rng, lo)
  return [a, a + uniform(rng, width)]
}

/** Skies: clear, hazy, overcast, sunset, dusk. */
const SKIES: ReadonlyArray<{ top: Rgb; horizon: Rgb }> = [
  { top: [90, 150, 220], horizon: [200, 220, 240] },
  { top: [160, 180, 200], horizon: [215, 215, 210] },
  { top: [120, 125, 135], horizon: [170, 172, 175] },
  { top: [110, 90, 150], horizon: [250, 170, 110] },
  { top: [40, 50, 100], horizon: [200, 120, 120] },
  { top: [60, 170, 200], horizon: [230, 235, 200] }
]

const drawOnce = (seed: number, rng: Rng): CityStyle => {
  const hue = uniform(rng, [0, 360])
  const saturation = uniform(rng, [0.05, 0.6])
  const walls = Array.from(
    { length: 4 + rng.randint(0, 3) },
    () => hsl((hue + uniform(rng, [-50, 50]) + 360) % 360, Math.min(1, saturation * uniform(rng, [0.5, 1.4])), uniform(rng, [0.3, 0.8]))
  )
  const low = rng.random() < 0.5
  const sky = pick(rng, SKIES)
  const jitter = (c: Rgb, d: number): Rgb => c.map((v) => Math.max(0, Math.min(255, Math.round(v + uniform(rng, [-d, d]))))) as unknown as Rgb
  const avenueSpacing = uniform(rng, [90, 170])
  const streetSpacing = uniform(rng, [70, 130])
  const diagonalCount = rng.randint(0, 2)
  const offset = uniform(rng, [25, 65]) * (rng.random() < 0.5 ? -1 : 1)
  const cars = rng.random() < 0.6
  return {
    name: `${VARIED_PREFIX}${seed}`,
    origin: [uniform(rng, [-40, 55]), uniform(rng, [-120, 140])],
    gridBearing: uniform(rng, [0, 90]),
    avenueSpacing,
    streetSpacing,
    avenues: rng.randint(6, 9),
    streets: rng.randint(6, 10),
    diagonals: Array.from({ length: diagonalCount }, (_, k) => ({ offset, at: (k === 0 ? -1 : 1) * uniform(rng, [150, 250]) })),
    streetHalfWidth: uniform(rng, [7, 10]),
    sidewalk: uniform(rng, [2.5, 4]),
    hillAmplitude: rng.random() < 0.4 ? uniform(rng, [5, 30]) : 0,
    hillWavelength: uniform(rng, [110, 220]),
    buildingWidth: range(rng, [6, 14], [4, 12]),
    buildingHeight: low ? range(rng, [6, 10], [3, 10]) : range(rng, [14, 30], [15, 60]),
    floorHeight: uniform(rng, [2.9, 4]),
    walls,
    windowColour: hsl(uniform(rng, [180, 240]), uniform(rng, [0.1, 0.4]), uniform(rng, [0.15, 0.45])),
    trimColour: hsl(uniform(rng, [0, 360]), uniform(rng, [0, 0.3]), uniform(rng, [0.6, 0.95])),
    groundFloor: hsl(uniform(rng, [0, 360]), uniform(rng, [0, 0.4]), uniform(rng, [0.1, 0.4])),
    skyTop: jitter(sky.top, 15),
    skyHorizon: jitter(sky.horizon, 15),
    skyline: hsl(uniform(rng, [0, 360]), uniform(rng, [0, 0.35]), uniform(rng, [0.3, 0.6])),
    skylineElevation: low ? [2, uniform(rng, [5, 10])] : [5, uniform(rng, [12, 26])],
    skylineKind: rng.random() < 0.5 ? "towers" : "hills",
    road: jitter([80, 80, 82], 20),
    roadMarking: rng.random() < 0.5 ? [240, 240, 235] : [235, 200, 40],
    pavement: jitter([170, 165, 160], 30),
    cabs: cars,
    cableCars: false,
    bayWindows: rng.random() < 0.3,
    // any hue but the yellow of NYC's cabs
    carColour: hsl(uniform(rng, [70, 390]) % 360, uniform(rng, [0.2, 0.8]), uniform(rng, [0.25, 0.7])),
    signFrame: hsl(uniform(rng, [0, 360]), uniform(rng, [0, 0.5]), uniform(rng, [0.05, 0.85])),
    ...(rng.random() < 0.5 ? { trees: hsl(uniform(rng, [70, 150]), uniform(rng, [0.3, 0.7]), uniform(rng, [0.2, 0.45])) } : {}),
    lampPosts: rng.random() < 0.5,
    lighting: {
      brightness: uniform(rng, [0.7, 1.15]),
      tint: jitter([255, 245, 235], 20),
      sun: ((a: number) => [Math.sin(a), Math.cos(a)] as const)(uniform(rng, [0, 2 * Math.PI]))
    }
  }
}

const mean = (colours: ReadonlyArray<Rgb>): number[] => [0, 1, 2].map((k) => colours.reduce((s, c) => s + c[k], 0) / (255 * colours.length))

/**
 * A style's look as numbers (each roughly in 0..1): facade colour, sky, pavement, building
 * height and width, hills. Two styles whose signatures lie close look alike. (The held-out
 * styles' furniture — NYC's yellow cabs, SF's cable cars — is never drawn at all.)
 */
export const styleSignature = (s: CityStyle): number[] => [
  ...mean(s.walls),
  ...mean([s.skyTop]),
  ...mean([s.skyHorizon]),
  ...mean([s.pavement]),
  (s.buildingHeight[0] + s.buildingHeight[1]) / 120,
  (s.buildingWidth[0] + s.buildingWidth[1]) / 40,
  s.hillAmplitude / 30
]

export const styleDistance = (a: CityStyle, b: CityStyle): number => {
  const x = styleSignature(a)
  const y = styleSignature(b)
  return Math.sqrt(x.reduce((s, v, i) => s + (v - y[i]) ** 2, 0))
}

/** How far a drawn style must be from `nyc` and from `sf` (signature distance). */
export const MIN_DISTANCE_TO_HELD_OUT = 0.35

/**
 * The style of a seed: draws until one is far enough from both held-out styles and lays out a
 * street network without stubs (every draw from the seed's own generator: same seed, same style).
 */
export const variedStyle = (seed: number): CityStyle => {
  const rng = new PythonRandom(BigInt(seed) * 7919n + 101n)
  for (let attempt = 0; attempt < 200; attempt++) {
    const style = drawOnce(seed, rng)
    if (styleDistance(style, STYLES["nyc"]) < MIN_DISTANCE_TO_HELD_OUT || styleDistance(style, STYLES["sf"]) < MIN_DISTANCE_TO_HELD_OUT) continue
    try {
      buildCity(style, new PythonRandom(0))
      return style
    } catch {
      // its diagonals leave stubs of streets: draw again
    }
  }
  throw new RangeError(`style seed ${seed}: no style far from nyc and sf after 200 draws`)
}

/**
 * A named style: `nyc`, `sf`, or `varied:N` for the style drawn from seed N; `NAME@B` is that style
 * with its street grid turned to bearing B (`sf@29`: San Francisco's look on New York's grid angle).
 */
export const styleByName = (name: string): CityStyle | undefined => {
  const turned = /^(.+)@(\d+(?:\.\d+)?)$/.exec(name)
  if (turned !== null) {
    const style = styleByName(turned[1])
    return style === undefined ? undefined : { ...style, name, gridBearing: Number(turned[2]) }
  }
  const fixed = STYLES[name]
  if (fixed !== undefined) return fixed
  const m = /^varied:(\d+)$/.exec(name)
  return m === null ? undefined : variedStyle(Number(m[1]))
}
