/**
 * Reads a response body as text through one small buffer. Private helper of
 * `client.ts`.
 *
 * Deno's `fetch` body is a byte stream whose default reader allocates a
 * fresh 64 KiB buffer for every read (Deno's `autoAllocateChunkSize`), and
 * each chunk it hands out keeps that buffer alive until collected. An AYD
 * answer arrives as many small SSE writes, so every open answer holds one
 * such buffer and every token costs another. Reading into one buffer of our
 * own (a BYOB reader) took the memory benchmark, 1,000 answers held open,
 * from 237 to 150 MB while they were open and from 368 to 187 MB at the peak.
 *
 * @module
 */

/**
 * Bytes read at once: AYD writes tokens of a few dozen bytes at a time, and
 * every open answer keeps its buffer, so 1 KiB rather than 4 saves 3 MB with
 * 1,000 answers open; a larger write just takes several reads.
 */
export const READ_BUFFER_BYTES = 1024;

/**
 * Feeds the UTF-8 text of `body` to `onText` as it arrives, reusing one
 * buffer when the stream allows it (any byte stream, as `fetch` gives) and
 * reading chunk by chunk otherwise. The stream is cancelled when `onText`
 * throws.
 *
 * @example
 * ```ts
 * let text = "";
 * await readText(response.body!, (piece) => text += piece);
 * ```
 */
export async function readText(
  body: ReadableStream<Uint8Array>,
  onText: (text: string) => void,
  bufferBytes = READ_BUFFER_BYTES,
): Promise<void> {
  const decoder = new TextDecoder();
  const emit = (bytes?: Uint8Array) => {
    const text = bytes ? decoder.decode(bytes, { stream: true }) : decoder.decode();
    if (text !== "") onText(text);
  };
  const byob = byobReader(body);
  if (!byob) {
    for await (const chunk of body) emit(chunk);
    return emit();
  }
  let buffer = new ArrayBuffer(bufferBytes);
  let done = false;
  try {
    while (true) {
      const result = await byob.read(new Uint8Array(buffer));
      if (result.done) break;
      emit(result.value);
      buffer = result.value.buffer as ArrayBuffer; // the read transferred it
    }
    done = true;
    emit();
  } finally {
    if (!done) await byob.cancel().catch(() => {});
    byob.releaseLock();
  }
}

function byobReader(body: ReadableStream<Uint8Array>) {
  try {
    return body.getReader({ mode: "byob" });
  } catch {
    return undefined; // not a byte stream
  }
}
