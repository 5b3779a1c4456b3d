/**
 * The KV a KV-level test runs on: in memory, or with `TEST_KV=connect` a
 * fresh KV Connect server (`tests/fakes/kv_connect/`) that the real Deno
 * client talks to over HTTP, so the same test bodies check the bridge's KV
 * code against a remote database's limits and behaviour.
 *
 * @module
 */
import { startKvConnectServer } from "./fakes/kv_connect/mod.ts";

/** One token for every server: two opens at once then cannot read each other's. */
const TOKEN = "test-kv-connect-token";

/**
 * Opens an empty KV: `:memory:`, or a KV Connect server of its own when
 * `TEST_KV=connect`. Closing or disposing the KV also stops its server.
 *
 * @example
 * ```ts
 * using kv = await openTestKv();
 * await kv.set(["k"], 1);
 * ```
 */
export async function openTestKv(): Promise<Deno.Kv> {
  if (Deno.env.get("TEST_KV") !== "connect") return await Deno.openKv(":memory:");
  const server = await startKvConnectServer({ token: TOKEN });
  Deno.env.set("DENO_KV_ACCESS_TOKEN", TOKEN);
  const kv = await Deno.openKv(server.url);
  const closeKv = kv.close.bind(kv);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    closeKv();
    // Not awaited: `using kv` disposes synchronously. With the client gone
    // nothing is in flight, so the shutdown settles at once.
    server.close();
  };
  Object.defineProperties(kv, { close: { value: close }, [Symbol.dispose]: { value: close } });
  return kv;
}
