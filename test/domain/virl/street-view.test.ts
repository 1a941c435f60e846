import { Effect } from "effect"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import type { RouteDataset } from "../../../src/core/dataset.ts"
import { load } from "../../../src/plugins/dataset/virl-routes.ts"
import { defaultConfig } from "../../../src/plugins/environment/virl/config.ts"
import { StreetViewRenderer } from "../../../src/domain/virl/street-view.ts"

const DATASET = path.resolve(import.meta.dirname, "../../fixtures/virl-reference/dataset")

describe("street views", () => {
  it("are rendered once per process: a second renderer of the same dataset (another evaluation) decodes nothing it has", async () => {
    const loaded = await Effect.runPromise(load(DATASET))
    const decodes: string[] = []
    const counting = (root: string): RouteDataset => ({
      ...loaded,
      root,
      panorama: (id, span) => {
        decodes.push(id)
        return loaded.panorama(id, span)
      }
    })
    const config = defaultConfig({ resolution: 40, language_only: false })
    const pose = { geocode: loaded.routes[0]!.route_results.geocode_list[0]!, heading: 123 }
    const first = await Effect.runPromise(new StreetViewRenderer(counting(loaded.root), config).render(pose))
    expect(decodes.length).toBe(1)
    const again = await Effect.runPromise(new StreetViewRenderer(counting(loaded.root), config).render(pose))
    expect(again).toBe(first)
    expect(decodes.length).toBe(1)
    // another dataset folder, or another size, is rendered anew
    const elsewhere = await Effect.runPromise(new StreetViewRenderer(counting(`${loaded.root}-copy`), config).render(pose))
    expect(decodes.length).toBe(2)
    expect(Buffer.from(elsewhere.rgb).equals(Buffer.from(first.rgb))).toBe(true)
    await Effect.runPromise(new StreetViewRenderer(counting(loaded.root), defaultConfig({ resolution: 41, language_only: false })).render(pose))
    expect(decodes.length).toBe(3)
  })
})
