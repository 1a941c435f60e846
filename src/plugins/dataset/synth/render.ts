import type { Rng } from "../../../core/random.ts"
import { logoInk, type Rgb } from "./brands.ts"
import { type City, type Facade, type Place, SIGN_WIDTH, terrainHeight } from "./city.ts"
import { type TextBitmap, textBitmap } from "./font.ts"
import { type GroundMap, surfaceAt } from "./ground.ts"
import type { PanoramaSite } from "./panoramas.ts"

/**
 * Renders the equirectangular street view at a site by casting one ray per column against the
 * facades around it (a 2.5-D street canyon): sky and skyline, walls with windows, shop signs,
 * openings where cross streets leave, road and pavement, and each style's street furniture.
 * Column x looks at bearing (x / (W − 1) − ½)·360 + 180 − rotation, which is how the
 * environment's projection reads a panorama with that north rotation.
 */
const CAMERA_HEIGHT = 2.5
/** Facades and streets farther than this are not drawn (metres). */
const DRAW_RADIUS = 160
/** Signs farther than this are too small to matter and are not drawn (metres). */
const SIGN_RADIUS = 30
const SIGN_BOTTOM = 3.1
const SIGN_TOP = 4.7
const WIRE_HEIGHT = 6
const WIRE_OFFSET = 1.2
const FOG_DISTANCE = 450
const SUN: readonly [number, number] = [0.53, -0.85]

interface Car {
  readonly x: number
  readonly y: number
  /** Unit direction the car is parked along. */
  readonly dx: number
  readonly dy: number
}

interface Sign {
  readonly place: Place
  readonly text: TextBitmap
  /** Whether the facade's length runs right to left for someone facing it. */
  readonly mirrored: boolean
}

const texts = new Map<string, TextBitmap>()
const signText = (name: string): TextBitmap => {
  let hit = texts.get(name)
  if (hit === undefined) {
    hit = textBitmap(name)
    texts.set(name, hit)
  }
  return hit
}

export const segmentDistance = (px: number, py: number, ax: number, ay: number, bx: number, by: number): number => {
  const vx = bx - ax
  const vy = by - ay
  const len2 = vx * vx + vy * vy
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - ax) * vx + (py - ay) * vy) / len2))
  return Math.hypot(px - ax - t * vx, py - ay - t * vy)
}

const mix = (c: Rgb, d: Rgb, t: number): [number, number, number] => [c[0] + (d[0] - c[0]) * t, c[1] + (d[1] - c[1]) * t, c[2] + (d[2] - c[2]) * t]

/** Cabs parked or stopped on the site's street, drawn from the site's own generator. */
/** Trees and lamp posts along both pavements of the streets near a site, at fixed spacing. */
interface Prop {
  readonly x: number
  readonly y: number
  readonly tree: boolean
}

const PROP_RADIUS = 70

const placeProps = (city: City, site: PanoramaSite): Prop[] => {
  const style = city.style
  if (style.trees === undefined && style.lampPosts !== true) return []
  const props: Prop[] = []
  const lateral = style.streetHalfWidth - style.sidewalk * 0.35
  const spacing = style.trees !== undefined && style.lampPosts === true ? 12 : 18
  for (const edge of city.edges) {
    const a = city.nodes[edge.a]
    const b = city.nodes[edge.b]
    if (segmentDistance(site.x, site.y, a.x, a.y, b.x, b.y) > PROP_RADIUS) continue
    const [trimA, trimB] = city.trims[edge.id]
    for (let u = trimA + 4, k = 0; u < edge.length - trimB - 4; u += spacing, k++) {
      for (const side of [1, -1]) {
        const x = a.x + edge.dx * u + edge.dy * side * lateral
        const y = a.y + edge.dy * u - edge.dx * side * lateral
        if (Math.hypot(x - site.x, y - site.y) > PROP_RADIUS || Math.hypot(x - site.x, y - site.y) < 2) continue
        const tree = style.trees !== undefined && (style.lampPosts !== true || k % 2 === 0)
        props.push({ x, y, tree })
      }
    }
  }
  return props
}

const TREE_CROWN = 1.8
const TREE_CROWN_CENTRE = 4.3
const TRUNK: Rgb = [85, 60, 40]
const LAMP: Rgb = [45, 48, 52]
const LAMP_HEIGHT = 5.6

const drawCars = (city: City, site: PanoramaSite, rng: Rng): Car[] => {
  if (!city.style.cabs) return []
  const edgeIds = site.edge !== undefined ? [site.edge] : city.nodes[site.node as number].edges
  const cars: Car[] = []
  const count = Math.floor(rng.random() * 3)
  for (let i = 0; i < count; i++) {
    const edge = city.edges[edgeIds[rng.choiceIndex(edgeIds.length)]]
    const along = (rng.random() < 0.5 ? -1 : 1) * (9 + rng.random() * 30)
    const lateral = (rng.random() < 0.5 ? -1 : 1) * (city.style.streetHalfWidth - city.style.sidewalk) * 0.55
    cars.push({ x: site.x + edge.dx * along + edge.dy * lateral, y: site.y + edge.dy * along - edge.dx * lateral, dx: edge.dx, dy: edge.dy })
  }
  return cars
}

export interface PanoramaSize {
  readonly width: number
  readonly height: number
}

export const renderPanorama = (city: City, ground: GroundMap, site: PanoramaSite, size: PanoramaSize, rng: Rng): Uint8Array => {
  const style = city.style
  const { width: W, height: H } = size
  const out = new Uint8ClampedArray(W * H * 3)
  const h0 = terrainHeight(style, site.x, site.y)

  const byFacade = new Map<number, Sign[]>()
  for (const place of city.places) {
    if (Math.hypot(place.x - site.x, place.y - site.y) > SIGN_RADIUS) continue
    const list = byFacade.get(place.facade) ?? []
    const f = city.facades[place.facade]
    // facing the wall (against its normal), the right hand points along (−ny, nx)
    const mirrored = (f.bx - f.ax) * -f.ny + (f.by - f.ay) * f.nx < 0
    list.push({ place, text: signText(place.brand.name), mirrored })
    byFacade.set(place.facade, list)
  }
  const facades: Array<{ f: Facade; signs: Sign[] }> = []
  city.facades.forEach((f, id) => {
    if (f.length > 0 && segmentDistance(site.x, site.y, f.ax, f.ay, f.bx, f.by) < DRAW_RADIUS) facades.push({ f, signs: byFacade.get(id) ?? [] })
  })
  const wireLines = style.cableCars
    ? city.edges
      .filter((e) => segmentDistance(site.x, site.y, city.nodes[e.a].x, city.nodes[e.a].y, city.nodes[e.b].x, city.nodes[e.b].y) < 60)
      .flatMap((e) =>
        [-1, 1].map((side) => ({
          ax: city.nodes[e.a].x + e.dy * side * WIRE_OFFSET - site.x,
          ay: city.nodes[e.a].y - e.dx * side * WIRE_OFFSET - site.y,
          ex: city.nodes[e.b].x - city.nodes[e.a].x,
          ey: city.nodes[e.b].y - city.nodes[e.a].y
        }))
      )
    : []
  const cars = drawCars(city, site, rng)
  const props = placeProps(city, site)
  const sun = style.lighting?.sun ?? SUN
  const carBody = style.carColour ?? CAB_BODY
  const signFrame = style.signFrame ?? SIGN_FRAME

  const tanElevation = new Float64Array(H)
  const elevationDeg = new Float64Array(H)
  const sky = new Float64Array(H * 3)
  for (let y = 0; y < H; y++) {
    const elevation = -(y / (H - 1) - 0.5) * Math.PI
    tanElevation[y] = Math.tan(elevation)
    elevationDeg[y] = (elevation * 180) / Math.PI
    sky.set(mix(style.skyHorizon, style.skyTop, Math.min(1, Math.max(0, elevationDeg[y] / 40))), y * 3)
  }
  const surfaces: ReadonlyArray<Rgb> = [style.pavement, style.road, style.roadMarking, [120, 118, 115], [150, 150, 155]]
  const [fogR, fogG, fogB] = style.skyHorizon
  const skylineColour = mix(style.skyline, style.skyHorizon, 0.25)
  const wires: number[] = []

  for (let x = 0; x < W; x++) {
    const bearing = (x / (W - 1) - 0.5) * 360 + 180 - site.rotation
    const rad = (bearing * Math.PI) / 180
    const dx = Math.sin(rad)
    const dy = Math.cos(rad)

    // the nearest facade along the ray
    let t = Infinity
    let hit: { f: Facade; signs: Sign[] } | undefined
    let hitS = 0
    for (const entry of facades) {
      const f = entry.f
      const ex = f.bx - f.ax
      const ey = f.by - f.ay
      const den = dx * ey - dy * ex
      if (Math.abs(den) < 1e-12) continue
      const wx = f.ax - site.x
      const wy = f.ay - site.y
      const tr = (wx * ey - wy * ex) / den
      const s = (wx * dy - wy * dx) / den
      if (tr > 0.3 && tr < t && s >= 0 && s <= 1) {
        t = tr
        hit = entry
        hitS = s
      }
    }
    let zBase = -CAMERA_HEIGHT
    let zTop = -Infinity
    let slope: number
    let u = 0
    let bld: Facade["buildings"][number] | undefined
    let sign: Sign | undefined
    let shade = 1
    let fog = 0
    if (hit !== undefined) {
      const f = hit.f
      u = hitS * f.length
      bld = f.buildings.find((b) => u >= b.start && u < b.end) ?? f.buildings[f.buildings.length - 1]
      zBase = terrainHeight(style, site.x + dx * t, site.y + dy * t) - h0 - CAMERA_HEIGHT
      zTop = zBase + (bld?.height ?? 0)
      shade = 0.78 + 0.22 * (f.nx * sun[0] + f.ny * sun[1])
      fog = 1 - Math.exp(-t / FOG_DISTANCE)
      slope = (zBase + CAMERA_HEIGHT) / t
      sign = hit.signs.find((sg) => Math.abs(u - sg.place.u) < SIGN_WIDTH / 2)
    } else {
      slope = (terrainHeight(style, site.x + dx * 20, site.y + dy * 20) - h0) / 20
    }
    const skyBin = Math.floor((((bearing % 360) + 360) % 360) * 2) % city.skyline.length
    const skylineTop = city.skyline[skyBin]

    // overhead cable-car wires crossing this column (sf)
    wires.length = 0
    for (const w of wireLines) {
      const den = dx * w.ey - dy * w.ex
      if (Math.abs(den) < 1e-9) continue
      const tw = (w.ax * w.ey - w.ay * w.ex) / den
      const s = (w.ax * dy - w.ay * dx) / den
      if (tw > 0.5 && tw < t && s >= 0 && s <= 1) wires.push((WIRE_HEIGHT - CAMERA_HEIGHT) / tw + slope)
    }
    // the nearest car in front of the facade in this column
    let carTop = -Infinity
    let carBottom = Infinity
    let carDistance = Infinity
    for (const c of cars) {
      const cx = c.x - site.x
      const cy = c.y - site.y
      const dist = Math.hypot(cx, cy)
      if (dist >= t || dist >= carDistance) continue
      const sideways = Math.abs((cx * c.dy - cy * c.dx) / dist)
      const halfWidth = 1 + 1.3 * (1 - sideways)
      if (cx * dx + cy * dy > 0 && Math.abs(cx * dy - cy * dx) < halfWidth) {
        const base = -CAMERA_HEIGHT + slope * dist
        carTop = (base + 1.5) / dist
        carBottom = base / dist
        carDistance = dist
      }
    }

    // the nearest tree or lamp post in this column, in front of the facade
    let prop: Prop | undefined
    let propDistance = Infinity
    let propOffset = 0
    for (const p of props) {
      const px = p.x - site.x
      const py = p.y - site.y
      const along = px * dx + py * dy
      if (along <= 0.5 || along >= t || along >= propDistance) continue
      const off = Math.abs(px * dy - py * dx)
      if (off < (p.tree ? TREE_CROWN : 0.45)) {
        prop = p
        propDistance = along
        propOffset = off
      }
    }
    const propBase = -CAMERA_HEIGHT + slope * propDistance

    for (let y = 0; y < H; y++) {
      const e = tanElevation[y]
      const o = (y * W + x) * 3
      if (prop !== undefined) {
        const zp = e * propDistance - propBase
        let c: Rgb | undefined
        if (prop.tree) {
          if ((zp - TREE_CROWN_CENTRE) ** 2 + propOffset ** 2 < TREE_CROWN ** 2) c = style.trees as Rgb
          else if (zp >= 0 && zp < TREE_CROWN_CENTRE && propOffset < 0.18) c = TRUNK
        } else if ((zp >= 0 && zp < LAMP_HEIGHT && propOffset < 0.09) || (zp >= LAMP_HEIGHT - 0.35 && zp < LAMP_HEIGHT && propOffset < 0.45)) c = LAMP
        if (c !== undefined) {
          out[o] = c[0]
          out[o + 1] = c[1]
          out[o + 2] = c[2]
          continue
        }
      }
      if (e <= carTop && e >= carBottom) {
        const zc = (e - carBottom) / (carTop - carBottom)
        const c = zc > 0.62 && zc < 0.9 ? CAB_WINDOW : zc < 0.22 ? CAB_WHEEL : carBody
        out[o] = c[0]
        out[o + 1] = c[1]
        out[o + 2] = c[2]
        continue
      }
      let wire = false
      for (let k = 0; k < wires.length; k++) if (Math.abs(wires[k] - e) < 0.004 + 0.0015 * Math.abs(wires[k])) wire = true
      if (wire) {
        out[o] = 35
        out[o + 1] = 35
        out[o + 2] = 35
        continue
      }
      const z = t * e
      if (bld !== undefined && z <= zTop && z >= zBase) {
        const zh = z - zBase
        let c: Rgb = bld.wall
        if (sign !== undefined && zh >= SIGN_BOTTOM && zh <= SIGN_TOP) {
          const su = u - (sign.place.u - SIGN_WIDTH / 2)
          c = signPixel(sign, sign.mirrored ? SIGN_WIDTH - su : su, (SIGN_TOP - zh) / (SIGN_TOP - SIGN_BOTTOM), signFrame)
          out[o] = c[0]
          out[o + 1] = c[1]
          out[o + 2] = c[2]
          continue
        }
        const su = u - bld.start
        const floor = style.floorHeight
        const fu = su % bld.bay
        const fz = zh % floor
        if (su < 0.25 || bld.end - u < 0.25 || bld.height - zh < 0.5) c = style.trimColour
        else if (zh < floor) {
          if (zh < 2.8 && fu > 0.2 && fu < bld.bay - 0.2) c = style.groundFloor
        } else if (fu > bld.bay * 0.22 && fu < bld.bay * 0.78 && fz > 0.8 && fz < 2.5) {
          c = style.windowColour
          if (style.bayWindows && (fu < bld.bay * 0.3 || fu > bld.bay * 0.7 || fz < 0.95 || fz > 2.35)) c = style.trimColour
        }
        out[o] = c[0] * shade + (fogR - c[0] * shade) * fog
        out[o + 1] = c[1] * shade + (fogG - c[1] * shade) * fog
        out[o + 2] = c[2] * shade + (fogB - c[2] * shade) * fog
      } else if (hit !== undefined ? z > zTop : e > slope) {
        if (elevationDeg[y] < skylineTop) {
          out[o] = skylineColour[0]
          out[o + 1] = skylineColour[1]
          out[o + 2] = skylineColour[2]
        } else {
          out[o] = sky[y * 3]
          out[o + 1] = sky[y * 3 + 1]
          out[o + 2] = sky[y * 3 + 2]
        }
      } else {
        const dist = -CAMERA_HEIGHT / (e - slope)
        // right under the camera, the car that carries it (as on real street views)
        const c = dist < NADIR_RADIUS ? CAMERA_CAR : surfaces[surfaceAt(ground, site.x + dx * dist, site.y + dy * dist)]
        const f = 1 - Math.exp(-dist / FOG_DISTANCE)
        out[o] = c[0] + (fogR - c[0]) * f
        out[o + 1] = c[1] + (fogG - c[1]) * f
        out[o + 2] = c[2] + (fogB - c[2]) * f
      }
    }
  }
  if (style.lighting !== undefined) {
    const { brightness, tint } = style.lighting
    const gain = [0, 1, 2].map((k) => (brightness * tint[k]) / 255)
    for (let i = 0; i < out.length; i++) out[i] = out[i] * gain[i % 3]
  }
  return new Uint8Array(out.buffer)
}

const NADIR_RADIUS = 1.8
const CAMERA_CAR: Rgb = [38, 38, 42]
const CAB_BODY: Rgb = [250, 200, 20]
const SIGN_FRAME: Rgb = [30, 30, 30]
const CAB_WINDOW: Rgb = [40, 45, 50]
const CAB_WHEEL: Rgb = [25, 25, 25]

/** A sign board: the logo on the left, the name on the right. `su` in metres, `sv` 0 at the top. */
const signPixel = (sign: Sign, su: number, sv: number, frame: Rgb): Rgb => {
  const brand = sign.place.brand
  const height = SIGN_TOP - SIGN_BOTTOM
  const margin = 0.12
  if (su < margin || su > SIGN_WIDTH - margin || sv < margin / height || sv > 1 - margin / height) return frame
  if (su < height) return logoInk(brand.logo, su / height, sv) ? brand.logoColour : brand.background
  const areaW = SIGN_WIDTH - height - 0.25
  const areaH = height * 0.6
  const text = sign.text
  const scale = Math.min(areaW / text.width, areaH / text.height)
  const tx = (su - height - (areaW - text.width * scale) / 2) / scale
  const ty = (sv * height - (height - text.height * scale) / 2) / scale
  if (tx >= 0 && tx < text.width && ty >= 0 && ty < text.height && text.bits[Math.floor(ty) * text.width + Math.floor(tx)] === 1) return brand.text
  return brand.background
}
