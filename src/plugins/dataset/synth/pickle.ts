/**
 * Writes `{(lat, lng): pano_id}` as a protocol-4 Python pickle, the form of SFTvsRL_Data's
 * gps_pano_mapping.pkl: an empty dict filled by SETITEMS batches of 1,000, keys as tuples of
 * two BINFLOATs, values as unicode strings.
 */
const PROTO = 0x80
const EMPTY_DICT = 0x7d
const MARK = 0x28
const BINFLOAT = 0x47
const TUPLE2 = 0x86
const SHORT_BINUNICODE = 0x8c
const BINUNICODE = 0x58
const SETITEMS = 0x75
const STOP = 0x2e
const BATCH = 1000

export const pickleMapping = (entries: ReadonlyArray<readonly [readonly [number, number], string]>): Buffer => {
  const parts: Buffer[] = [Buffer.from([PROTO, 4, EMPTY_DICT])]
  for (let start = 0; start < entries.length; start += BATCH) {
    const batch = entries.slice(start, start + BATCH)
    parts.push(Buffer.from([MARK]))
    for (const [[lat, lng], id] of batch) {
      const key = Buffer.alloc(19)
      key[0] = BINFLOAT
      key.writeDoubleBE(lat, 1)
      key[9] = BINFLOAT
      key.writeDoubleBE(lng, 10)
      key[18] = TUPLE2
      const text = Buffer.from(id, "utf8")
      const head = text.length < 256 ? Buffer.from([SHORT_BINUNICODE, text.length]) : Buffer.alloc(5)
      if (text.length >= 256) {
        head[0] = BINUNICODE
        head.writeUInt32LE(text.length, 1)
      }
      parts.push(key, head, text)
    }
    parts.push(Buffer.from([SETITEMS]))
  }
  parts.push(Buffer.from([STOP]))
  return Buffer.concat(parts)
}
