/** The mapping of test/fixtures/pickles/ours-mapping.pkl: awkward floats and ids included. */
export const OUR_MAPPING: ReadonlyArray<readonly [readonly [number, number], string]> = [
  [[40.7409607, -73.9893021], "xNi3em3hmrB1oCwRHq7ttj"],
  [[0.1 + 0.2, -0], "-leading-dash"],
  [[1e-300, 1.7976931348623157e308], "extremes"],
  [[37.7855, -122.4195], "ünïcödé-id"],
  ...Array.from({ length: 300 }, (_, i) => [[40 + i * 1e-5, -73 - i * 3e-6], `pano-${i}`] as const)
]
