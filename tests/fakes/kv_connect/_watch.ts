/**
 * The `watch` data path operation, answered simply: a stream of
 * length-prefixed `WatchOutput` frames, the first at once, then one after each
 * commit that changed a watched key. Like denokv, every frame marks every key
 * `changed` with its current entry (none when absent): the Deno client reads
 * a `changed: false` key as deleted, and finds what changed by comparing
 * versionstamps itself. denokv also sends an empty frame every 5 seconds as
 * a keep-alive; this fake sends none, so it leaves no timer behind.
 *
 * @module
 */
import { hex } from "./_keys.ts";
import { encode, type Messages, ReadStatus } from "./_proto.ts";
import type { Store } from "./_store.ts";

/** A running watch, for the server to end at close; `onEnd` runs once either side ends it. */
export interface Watcher {
  stream: ReadableStream<Uint8Array>;
  /** Ends the stream (the client then retries the watch). */
  end(): void;
}

/**
 * Starts watching `keys` in `store`.
 *
 * @example
 * ```ts
 * const { stream } = watchKeys(store, [key], () => watchers.delete(watcher));
 * new Response(stream, { headers: { "content-type": "application/octet-stream" } });
 * ```
 */
export function watchKeys(store: Store, keys: Uint8Array[], onEnd: () => void): Watcher {
  let unsubscribe = () => {};
  let ended = false;
  let end = () => {};
  const stop = () => {
    if (!ended) (ended = true, unsubscribe(), onEnd());
  };
  const output = (): Messages["WatchOutput"] => ({
    status: ReadStatus.SUCCESS,
    keys: keys.map((key) => {
      const entry = store.get(key);
      if (!entry) return { changed: true };
      const { value, encoding } = entry;
      return {
        changed: true,
        entry_if_changed: { key, value, encoding, versionstamp: entry.versionstamp },
      };
    }),
  });
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      const send = () => controller.enqueue(frame(output()));
      const watched = new Set(keys.map(hex));
      unsubscribe = store.onCommit((changed) => {
        if (changed.some((key) => watched.has(hex(key)))) send();
      });
      end = () => {
        if (ended) return;
        stop();
        controller.close();
      };
      send();
    },
    cancel() {
      stop();
    },
  });
  return { stream, end: () => end() };
}

function frame(message: Messages["WatchOutput"]): Uint8Array {
  const body = encode("WatchOutput", message);
  const bytes = new Uint8Array(4 + body.length);
  new DataView(bytes.buffer).setUint32(0, body.length, true);
  bytes.set(body, 4);
  return bytes;
}
