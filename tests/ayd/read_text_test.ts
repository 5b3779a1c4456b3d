/** Reading an answer stream's text through one small buffer. */
import assert from "node:assert/strict";
import { READ_BUFFER_BYTES, readText } from "../../src/ayd/_read_text.ts";

const encoder = new TextEncoder();

/** A server that writes `pieces` one network write at a time. */
function serveInPieces(pieces: Uint8Array[]) {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const piece = pieces.shift();
        if (!piece) return controller.close();
        await new Promise((resolve) => setTimeout(resolve, 2));
        controller.enqueue(piece);
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
}

Deno.test("read text - a fetch body split inside a character arrives whole", async () => {
  const bytes = encoder.encode("data: Zürich 🇨🇭 ✓\n\ndata: fin\n\n");
  // Split inside ü (2 bytes), inside the flag (8 bytes) and inside ✓ (3 bytes).
  const cuts = [8, 15, 18, 24];
  const pieces = [0, ...cuts].map((start, i) => bytes.slice(start, [...cuts, bytes.length][i]));
  await using server = serveInPieces(pieces);
  const response = await fetch(`http://127.0.0.1:${server.addr.port}/`);
  const received: string[] = [];
  await readText(response.body!, (text) => received.push(text));
  assert.equal(received.join(""), "data: Zürich 🇨🇭 ✓\n\ndata: fin\n\n");
  assert.ok(received.length >= 2, "text is handed on as it arrives, not at the end");
});

Deno.test("read text - a byte stream is read into our buffer, not one the stream allocates", async () => {
  const offered: number[] = [];
  const buffers = new Set<number>();
  let writes = 5;
  const body = new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: 64 * 1024, // what Deno's fetch body uses
    pull(controller) {
      const view = controller.byobRequest!.view as Uint8Array;
      offered.push(view.byteLength);
      buffers.add(view.buffer.byteLength);
      if (writes-- === 0) {
        controller.close();
        return controller.byobRequest!.respond(0);
      }
      const bytes = encoder.encode("token ");
      view.set(bytes);
      controller.byobRequest!.respond(bytes.length);
    },
  });
  let text = "";
  await readText(body, (piece) => text += piece);
  assert.equal(text, "token ".repeat(5));
  assert.deepEqual(new Set(offered), new Set([READ_BUFFER_BYTES]));
  assert.deepEqual([...buffers], [READ_BUFFER_BYTES]);
});

Deno.test("read text - a stream of chunks that is not a byte stream is read too", async () => {
  const body = ReadableStream.from([encoder.encode("a"), encoder.encode("é").slice(0, 1)])
    .pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        flush(controller) {
          controller.enqueue(encoder.encode("é").slice(1));
        },
      }),
    );
  let text = "";
  await readText(body, (piece) => text += piece);
  assert.equal(text, "aé");
});

Deno.test("read text - when the consumer throws, the stream is cancelled and the error kept", async () => {
  let cancelled: unknown;
  const body = new ReadableStream({
    type: "bytes",
    pull(controller) {
      controller.enqueue(encoder.encode("data: x\n\n"));
    },
    cancel(reason) {
      cancelled = reason ?? "cancelled";
    },
  });
  await assert.rejects(
    readText(body, () => {
      throw new Error("consumer failed");
    }),
    /consumer failed/,
  );
  assert.ok(cancelled, "the stream was cancelled");
});

Deno.test("read text - a stream that fails mid-way rejects with its error", async () => {
  let sent = false;
  const body = new ReadableStream({
    type: "bytes",
    pull(controller) {
      if (sent) return controller.error(new Error("connection reset"));
      sent = true;
      controller.enqueue(encoder.encode("data: par"));
    },
  });
  const received: string[] = [];
  await assert.rejects(readText(body, (text) => received.push(text)), /connection reset/);
  assert.deepEqual(received, ["data: par"]);
});
