/**
 * The shops and services whose signs mark landmarks and destinations. Each has a colour and a
 * logo shape of its own, besides its name, so that a small model can tell them apart at low
 * resolution. The names are made up.
 */
export type LogoShape = "circle" | "square" | "triangle" | "diamond" | "star" | "ring" | "cross" | "stripes" | "arch"

export type Rgb = readonly [number, number, number]

export interface Brand {
  readonly name: string
  /** Sign board. */
  readonly background: Rgb
  readonly text: Rgb
  readonly logo: LogoShape
  readonly logoColour: Rgb
}

export const BRANDS: ReadonlyArray<Brand> = [
  { name: "Sunrise Bakery", background: [236, 120, 32], text: [255, 255, 255], logo: "circle", logoColour: [255, 220, 40] },
  { name: "Metro Bank", background: [20, 40, 110], text: [255, 255, 255], logo: "square", logoColour: [240, 240, 240] },
  { name: "Green Leaf Market", background: [30, 130, 60], text: [255, 255, 255], logo: "triangle", logoColour: [200, 255, 140] },
  { name: "Corner Pharmacy", background: [245, 245, 245], text: [200, 20, 30], logo: "cross", logoColour: [220, 20, 30] },
  { name: "Harbor Coffee", background: [90, 50, 25], text: [245, 225, 190], logo: "ring", logoColour: [245, 225, 190] },
  { name: "Pizza Palace", background: [200, 20, 20], text: [255, 230, 0], logo: "triangle", logoColour: [255, 210, 0] },
  { name: "Post Office", background: [0, 80, 170], text: [255, 255, 255], logo: "diamond", logoColour: [255, 60, 60] },
  { name: "Book Nook", background: [100, 30, 130], text: [255, 230, 90], logo: "square", logoColour: [255, 210, 60] },
  { name: "Star Burger", background: [255, 205, 0], text: [180, 0, 0], logo: "star", logoColour: [210, 0, 0] },
  { name: "City Gym", background: [20, 20, 20], text: [255, 140, 0], logo: "stripes", logoColour: [255, 140, 0] },
  { name: "Noodle House", background: [170, 0, 40], text: [255, 255, 255], logo: "ring", logoColour: [255, 255, 255] },
  { name: "Fresh Juice", background: [150, 210, 40], text: [30, 60, 0], logo: "circle", logoColour: [255, 120, 0] },
  { name: "Taco Town", background: [0, 140, 140], text: [255, 255, 255], logo: "triangle", logoColour: [255, 80, 170] },
  { name: "Ice Cream Co", background: [255, 150, 200], text: [120, 0, 60], logo: "circle", logoColour: [255, 255, 255] },
  { name: "Laundromat", background: [150, 200, 240], text: [10, 30, 90], logo: "diamond", logoColour: [10, 30, 90] },
  { name: "Hardware Store", background: [110, 110, 110], text: [255, 200, 0], logo: "cross", logoColour: [255, 200, 0] },
  { name: "Flower Shop", background: [250, 240, 210], text: [180, 30, 110], logo: "star", logoColour: [230, 50, 140] },
  { name: "Sushi Bar", background: [15, 15, 60], text: [255, 80, 60], logo: "circle", logoColour: [255, 40, 40] },
  { name: "Cinema", background: [120, 0, 0], text: [255, 215, 0], logo: "stripes", logoColour: [255, 215, 0] },
  { name: "Bike Shop", background: [0, 100, 60], text: [255, 255, 255], logo: "ring", logoColour: [255, 210, 0] },
  { name: "Deli & Grill", background: [60, 60, 60], text: [255, 255, 255], logo: "arch", logoColour: [230, 40, 40] },
  { name: "Pet Supplies", background: [255, 170, 40], text: [40, 20, 90], logo: "arch", logoColour: [40, 20, 90] },
  { name: "Tea Garden", background: [210, 235, 200], text: [20, 90, 40], logo: "diamond", logoColour: [20, 140, 60] },
  { name: "Music Store", background: [40, 0, 80], text: [0, 230, 230], logo: "star", logoColour: [0, 230, 230] }
]

/** Whether (x, y) in the unit square [0, 1)² is ink of the logo. */
export const logoInk = (shape: LogoShape, x: number, y: number): boolean => {
  const dx = x - 0.5
  const dy = y - 0.5
  switch (shape) {
    case "circle":
      return dx * dx + dy * dy < 0.2
    case "square":
      return Math.abs(dx) < 0.38 && Math.abs(dy) < 0.38
    case "triangle":
      return y > 0.1 && y < 0.9 && Math.abs(dx) < ((y - 0.1) / 0.8) * 0.45
    case "diamond":
      return Math.abs(dx) + Math.abs(dy) < 0.45
    case "ring": {
      const r2 = dx * dx + dy * dy
      return r2 < 0.2 && r2 > 0.08
    }
    case "cross":
      return (Math.abs(dx) < 0.14 && Math.abs(dy) < 0.42) || (Math.abs(dy) < 0.14 && Math.abs(dx) < 0.42)
    case "stripes":
      return Math.abs(dy) < 0.42 && Math.floor(x * 5) % 2 === 0
    case "arch":
      return (dy > 0 && Math.abs(dx) < 0.42 && Math.abs(dx) > 0.18) || (dy <= 0 && dx * dx + dy * dy < 0.18 && dx * dx + dy * dy > 0.05)
    case "star": {
      const r = Math.sqrt(dx * dx + dy * dy)
      const a = Math.atan2(dy, dx)
      const edge = 0.2 + 0.25 * Math.max(0, Math.cos(5 * (a + Math.PI / 2)))
      return r < edge
    }
  }
}
