import type { Rgb } from "./brands.ts"

/**
 * How a city looks and how its streets are laid out. The navigation rules are the same in
 * every style; what differs is what the camera sees (the paper's visual-OOD shift) and the
 * grid's orientation and block sizes.
 */
export interface CityStyle {
  readonly name: string
  /** Where the city lies: the south-west corner of the street grid. */
  readonly origin: readonly [number, number]
  /** Bearing of the avenues (degrees clockwise from north); streets cross them at +90. */
  readonly gridBearing: number
  /** Distance between avenues and between streets (metres). */
  readonly avenueSpacing: number
  readonly streetSpacing: number
  readonly avenues: number
  readonly streets: number
  /**
   * Diagonal avenues: bearing relative to the grid, and where each crosses the grid's middle
   * avenue (metres along it from the centre).
   */
  readonly diagonals: ReadonlyArray<{ readonly offset: number; readonly at: number }>
  readonly streetHalfWidth: number
  readonly sidewalk: number
  /** Terrain: height = amplitude · sin(x / wavelength) · cos(y / wavelength) (metres). */
  readonly hillAmplitude: number
  readonly hillWavelength: number
  readonly buildingWidth: readonly [number, number]
  readonly buildingHeight: readonly [number, number]
  readonly floorHeight: number
  readonly walls: ReadonlyArray<Rgb>
  readonly windowColour: Rgb
  readonly trimColour: Rgb
  readonly groundFloor: Rgb
  readonly skyTop: Rgb
  readonly skyHorizon: Rgb
  readonly skyline: Rgb
  /** Elevation of the distant skyline (degrees): min, max, and whether it is towers or hills. */
  readonly skylineElevation: readonly [number, number]
  readonly skylineKind: "towers" | "hills"
  readonly road: Rgb
  readonly roadMarking: Rgb
  readonly pavement: Rgb
  /** Yellow cabs on the road (nyc). */
  readonly cabs: boolean
  /** Cable-car rails in the road and wires overhead (sf). */
  readonly cableCars: boolean
  /** Bay windows on the facades (sf Victorians). */
  readonly bayWindows: boolean
  /** Body colour of the parked cars (default: the yellow of NYC's cabs). */
  readonly carColour?: Rgb
  /** Frame of the shop signs (default near-black). */
  readonly signFrame?: Rgb
  /** Street furniture along the pavement: trees (with this crown colour) and lamp posts. */
  readonly trees?: Rgb
  readonly lampPosts?: boolean
  /** Light: overall brightness, a colour cast (255 = none) and the sun's direction (x east, y north). */
  readonly lighting?: { readonly brightness: number; readonly tint: Rgb; readonly sun: readonly [number, number] }
}

const nyc: CityStyle = {
  name: "nyc",
  origin: [40.7352, -73.9935],
  gridBearing: 29,
  avenueSpacing: 160,
  streetSpacing: 80,
  avenues: 6,
  streets: 12,
  // tan = 2/3: a diagonal crosses every avenue at the same point of a block
  diagonals: [
    { offset: 33.69, at: -240 },
    { offset: 33.69, at: 240 }
  ],
  streetHalfWidth: 9,
  sidewalk: 3.5,
  hillAmplitude: 0,
  hillWavelength: 1,
  buildingWidth: [10, 24],
  buildingHeight: [22, 80],
  floorHeight: 3.4,
  walls: [
    [150, 72, 55],
    [125, 60, 50],
    [170, 160, 150],
    [110, 115, 125],
    [95, 105, 120],
    [180, 175, 165],
    [140, 135, 130]
  ],
  windowColour: [60, 75, 95],
  trimColour: [200, 200, 195],
  groundFloor: [40, 45, 55],
  skyTop: [150, 170, 195],
  skyHorizon: [205, 210, 215],
  skyline: [130, 140, 155],
  skylineElevation: [6, 24],
  skylineKind: "towers",
  road: [70, 70, 75],
  roadMarking: [235, 235, 235],
  pavement: [165, 162, 158],
  cabs: true,
  cableCars: false,
  bayWindows: false
}

const sf: CityStyle = {
  name: "sf",
  origin: [37.7855, -122.4195],
  gridBearing: 0,
  avenueSpacing: 110,
  streetSpacing: 100,
  avenues: 9,
  streets: 9,
  // tan = 110/100: a diagonal crosses every avenue and street mid-block (like Market Street)
  diagonals: [
    { offset: 47.73, at: -200 },
    { offset: 47.73, at: 200 }
  ],
  streetHalfWidth: 8,
  sidewalk: 3,
  hillAmplitude: 30,
  hillWavelength: 130,
  buildingWidth: [7, 12],
  buildingHeight: [7, 13],
  floorHeight: 3.2,
  walls: [
    [238, 200, 170],
    [180, 215, 200],
    [245, 225, 150],
    [200, 180, 225],
    [245, 175, 165],
    [175, 205, 235],
    [250, 240, 225]
  ],
  windowColour: [95, 80, 70],
  trimColour: [255, 250, 240],
  groundFloor: [120, 90, 70],
  skyTop: [70, 140, 225],
  skyHorizon: [190, 215, 240],
  skyline: [120, 140, 90],
  skylineElevation: [2, 9],
  skylineKind: "hills",
  road: [95, 90, 85],
  roadMarking: [250, 245, 230],
  pavement: [200, 190, 175],
  cabs: false,
  cableCars: true,
  bayWindows: true
}

export const STYLES: Readonly<Record<string, CityStyle>> = { nyc, sf }
export const STYLE_NAMES = Object.keys(STYLES)
