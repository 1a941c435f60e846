import * as fs from "node:fs"
import { writeFileAtomic } from "./files.ts"

/**
 * The safetensors format (huggingface/safetensors, what PyTorch, JAX and Hugging Face load):
 * an 8-byte little-endian header length N, N bytes of JSON — per tensor its dtype, shape and the
 * byte range it occupies in the data that follows, plus `__metadata__` (string to string) — then
 * the tensors' bytes, back to back, little-endian. The header is padded with spaces to a multiple
 * of 8 bytes so that every tensor stays aligned.
 */
export interface Tensor {
  readonly name: string
  readonly shape: ReadonlyArray<number>
  readonly data: Float32Array
}

export interface SafetensorsFile {
  readonly tensors: ReadonlyArray<Tensor>
  readonly metadata: Readonly<Record<string, string>>
}

/** The format's own limit on the header (100 MB), which its readers refuse past. */
const MAX_HEADER = 100_000_000
const METADATA = "__metadata__"

/** The file's bytes; a tensor whose shape does not hold exactly its values is a RangeError naming it. */
export const encode = (file: SafetensorsFile): Buffer => {
  const header: Record<string, unknown> = { [METADATA]: file.metadata }
  let offset = 0
  for (const t of file.tensors) {
    if (t.name === METADATA || t.name === "") throw new RangeError(`a tensor cannot be named "${t.name}"`)
    if (t.name in header) throw new RangeError(`tensor ${t.name} is given twice`)
    const size = t.shape.reduce((a, b) => a * b, 1)
    if (!t.shape.every((d) => Number.isInteger(d) && d >= 0) || size !== t.data.length) {
      throw new RangeError(`tensor ${t.name}: shape [${t.shape.join(", ")}] does not hold its ${t.data.length} values`)
    }
    header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] }
    offset += t.data.byteLength
  }
  let json = Buffer.from(JSON.stringify(header), "utf8")
  const padded = Math.ceil(json.length / 8) * 8
  json = Buffer.concat([json, Buffer.alloc(padded - json.length, " ")])
  const out = Buffer.alloc(8 + json.length + offset)
  out.writeBigUInt64LE(BigInt(json.length), 0)
  json.copy(out, 8)
  let at = 8 + json.length
  for (const t of file.tensors) {
    // little-endian on every platform Node runs on that we support (x64, arm64)
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, at)
    at += t.data.byteLength
  }
  return out
}

/** Writes the file through a temporary sibling and a rename. */
export const write = (file: string, contents: SafetensorsFile): void => writeFileAtomic(file, encode(contents))

const fail = (why: string): never => {
  throw new Error(why)
}

/**
 * Reads a file as the format's own reader checks it: a header of the stated size that is a JSON
 * object, string metadata, known dtypes (F32 is all this project writes), shapes whose size
 * matches their byte ranges, and ranges that cover the data exactly, without gaps or overlaps.
 * Errors say what is wrong (the caller adds the file's name).
 */
export const decode = (bytes: Uint8Array): SafetensorsFile => {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buffer.length < 8) fail(`${buffer.length} bytes: too short for the 8-byte header length`)
  const n = buffer.readBigUInt64LE(0)
  if (n > BigInt(MAX_HEADER)) fail(`header length ${n} exceeds the format's ${MAX_HEADER} bytes`)
  if (Number(n) > buffer.length - 8) fail(`header length ${n} runs past the end of the file (${buffer.length} bytes)`)
  let header: unknown
  try {
    header = JSON.parse(buffer.subarray(8, 8 + Number(n)).toString("utf8"))
  } catch (e) {
    return fail(`header is not JSON: ${(e as Error).message}`)
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) return fail("header is not a JSON object")
  const data = buffer.subarray(8 + Number(n))
  const entries = Object.entries(header as Record<string, unknown>)
  const metadata: Record<string, string> = {}
  const tensors: Array<Tensor & { readonly begin: number; readonly end: number }> = []
  for (const [name, value] of entries) {
    if (name === METADATA) {
      if (typeof value !== "object" || value === null || Array.isArray(value)) fail(`${METADATA} is not an object`)
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`${METADATA}.${k} is not a string`)
        metadata[k] = v as string
      }
      continue
    }
    const t = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown }
    if (t.dtype !== "F32") fail(`tensor ${name}: dtype ${JSON.stringify(t.dtype)}, this reader knows F32`)
    const shape = t.shape
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) fail(`tensor ${name}: shape is not a list of sizes`)
    const offsets = t.data_offsets
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isInteger(d) && d >= 0) || offsets[0] > offsets[1]) {
      fail(`tensor ${name}: data_offsets is not [begin, end]`)
    }
    const [begin, end] = offsets as [number, number]
    const size = (shape as number[]).reduce((a, b) => a * b, 1)
    if ((end - begin) !== size * 4) fail(`tensor ${name}: shape [${(shape as number[]).join(", ")}] needs ${size * 4} bytes, its range holds ${end - begin}`)
    tensors.push({ name, shape: shape as number[], begin, end, data: new Float32Array(0) })
  }
  const byOffset = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end)
  let at = 0
  for (const t of byOffset) {
    if (t.begin !== at) fail(`tensor ${t.name} starts at byte ${t.begin}, the data before it ends at ${at} (gap or overlap)`)
    at = t.end
  }
  if (at !== data.length) fail(`the tensors cover ${at} bytes of data, the file holds ${data.length}`)
  return {
    metadata,
    tensors: tensors.map((t) => {
      const copy = new Uint8Array(t.end - t.begin)
      copy.set(data.subarray(t.begin, t.end))
      return { name: t.name, shape: t.shape, data: new Float32Array(copy.buffer) }
    })
  }
}

/** Reads and checks a file; errors name it. */
export const read = (file: string): SafetensorsFile => {
  try {
    return decode(fs.readFileSync(file))
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`)
  }
}
