/**
 * How a stream of program output is cut into log messages: whole lines, as many as fit in one
 * message; a line longer than a message is cut at the size limit (on a UTF-8 character boundary
 * where one is near); a last line without its newline waits for more unless `flushPartial`
 * (the program ended, or the line has waited long enough). Pure: byte ranges in, byte ranges out.
 */
export interface ChunkRange {
  start: number;
  end: number;
}

const NEWLINE = 0x0a;
/** A UTF-8 continuation byte (10xxxxxx) never starts a character. */
const isContinuation = (byte: number | undefined): boolean => byte !== undefined && (byte & 0xc0) === 0x80;
/** How far back a cut looks for a character boundary (a UTF-8 character has at most 4 bytes). */
const UTF8_SEQUENCE_BYTES_MAX = 4;

export function takeChunks(bytes: Uint8Array, chunkBytesMax: number, flushPartial: boolean): { chunks: ChunkRange[]; consumed: number } {
  if (!Number.isInteger(chunkBytesMax) || chunkBytesMax < UTF8_SEQUENCE_BYTES_MAX) throw new Error(`chunkBytesMax ${chunkBytesMax} is below ${UTF8_SEQUENCE_BYTES_MAX}`);
  const chunks: ChunkRange[] = [];
  let position = 0;
  while (position < bytes.length) {
    const windowEnd = Math.min(bytes.length, position + chunkBytesMax);
    const lastNewline = bytes.subarray(position, windowEnd).lastIndexOf(NEWLINE);
    if (lastNewline >= 0) {
      chunks.push({ start: position, end: position + lastNewline + 1 });
      position += lastNewline + 1;
      continue;
    }
    if (bytes.length - position >= chunkBytesMax) {
      // One line longer than a message: cut it, backing off to a character boundary.
      let end = windowEnd;
      for (let back = 0; back < UTF8_SEQUENCE_BYTES_MAX - 1 && isContinuation(bytes[end]); back++) end--;
      if (end <= position) end = windowEnd;
      chunks.push({ start: position, end });
      position = end;
      continue;
    }
    if (!flushPartial) break;
    chunks.push({ start: position, end: bytes.length });
    position = bytes.length;
  }
  return { chunks, consumed: position };
}
