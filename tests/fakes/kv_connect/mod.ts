/**
 * A KV Connect server for tests: a real HTTP server on 127.0.0.1 that the
 * Deno client opens with `Deno.openKv(server.url)` (and
 * `DENO_KV_ACCESS_TOKEN` set to `token`), written from the published protocol
 * (`kv-connect.md`, `datapath.proto`) and behaving as a self-hosted `denokv`
 * 0.12 does: the same limits, status codes and error texts, versionstamps,
 * expiry, and sum/min/max rules. Data lives in memory.
 *
 * @module
 */
import { atomicWrite, type DataPathContext, snapshotRead, watch } from "./_datapath.ts";
import {
  ApiError,
  DENOKV_LIMITS,
  type KvConnectLimits,
  LIMIT_REFUSALS,
  MESSAGES,
} from "./_limits.ts";
import { checkDataPathHeaders, exchangeMetadata, type Identity } from "./_metadata.ts";
import { listen } from "./_network.ts";
import { decodeKey } from "./_keys.ts";
import { createStore } from "./_store.ts";
import type { Watcher } from "./_watch.ts";

export { DENOKV_LIMITS, type KvConnectLimits, LIMIT_REFUSALS };

/** Options for {@linkcode startKvConnectServer}. */
export interface KvConnectServerOptions {
  /** The access token the metadata exchange accepts (`DENO_KV_ACCESS_TOKEN`). */
  token: string;
  /** Limits to change from denokv's (see {@linkcode DENOKV_LIMITS}). */
  limits?: Partial<KvConnectLimits>;
  /** The server's clock for expiry, in ms since the epoch (default `Date.now`). */
  now?: () => number;
  /** A port to listen on (default: any free one). */
  port?: number;
}

/** What the server has answered so far. */
export interface KvConnectStats {
  /** Every HTTP request received, answered or not, including refused and faulted ones. */
  roundTrips: number;
  /** Metadata exchanges answered 200. */
  metadataExchanges: number;
  /** `snapshot_read` requests answered 200. */
  snapshotReads: number;
  /** `atomic_write` requests answered 200: commits and check failures. */
  atomicWrites: number;
  /** Atomic writes that committed. */
  commits: number;
  /** Atomic writes whose checks failed (nothing written). */
  checkFailures: number;
  /** Atomic writes the server refused itself: headers, protobuf, a limit, a type mismatch. */
  refusedWrites: number;
  /**
   * Every request refused (4xx, or denokv's 500 for a value it cannot
   * decode), by reason: the key of denokv's message (`tooManyChecks`,
   * `invalidToken`, …). Check failures are not refusals.
   */
  refusals: Record<string, number>;
  /**
   * Requests refused for breaking one of denokv's limits (10 checks, 1,000
   * mutations, 800 KiB, key and value sizes, read ranges): the bridge builds
   * every operation within them, so any is a defect, even though a refused
   * group commit is retried member by member and nothing shows.
   */
  limitRefusals: number;
  /** Requests answered by {@linkcode KvConnectServer.failNext}. */
  faults: number;
  /** Atomic writes applied and then not answered, by {@linkcode KvConnectServer.applyThenFail}. */
  appliedThenFailed: number;
  /** Watch streams opened. */
  watches: number;
  /** Enqueue messages accepted (never delivered: KV Connect has no dequeue). */
  enqueues: number;
  /** Connections dropped while {@linkcode KvConnectServer.unreachable}. */
  droppedConnections: number;
  /** Data path requests received (`snapshot_read`, `atomic_write`, `watch`), answered or not. */
  dataRequests: number;
  /** Data path requests held now by {@linkcode KvConnectServer.hold}. */
  held: number;
}

/** A running KV Connect server. */
export interface KvConnectServer extends AsyncDisposable {
  /** What to pass to `Deno.openKv`: `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The port it listens on, kept while {@linkcode unreachable}. */
  readonly port: number;
  /** Counts, live. */
  readonly stats: Readonly<KvConnectStats>;
  /** Keys stored now (expired ones collected). */
  readonly size: number;
  /**
   * Makes the next `n` requests to the data path (default) or to the
   * metadata endpoint answer `status` (default 503) with denokv's text.
   */
  failNext(n: number, status?: number, where?: "data" | "metadata"): void;
  /**
   * Makes the next `n` atomic writes that commit and that `match` (default:
   * any) fail after they are applied: answered `503` (`"5xx"`, the default)
   * or with their stream reset before the answer (`"drop"`, a connection lost
   * after the commit). The client cannot tell that the write landed, and
   * Deno's sends the same body again (denokv `remote/lib.rs`, `call_raw`):
   * a write that checks a key it also sets then fails its check; one that
   * does not is applied twice.
   */
  applyThenFail(
    n: number,
    how?: "5xx" | "drop",
    match?: (keys: Deno.KvKey[]) => boolean,
  ): void;
  /** Holds every data path request unanswered until {@linkcode release}. */
  hold(): void;
  /** Answers the held requests and stops holding. */
  release(): void;
  /** Resolves once `condition` holds of the stats (checked after every request and drop). */
  until(condition: (stats: Readonly<KvConnectStats>) => boolean): Promise<void>;
  /** Stops serving HTTP; the port then accepts connections and closes them at once. */
  unreachable(): Promise<void>;
  /** Serves HTTP again on the same port, with the same data. */
  reachable(): Promise<void>;
  /** Ends watches, answers held requests and shuts the server down. */
  close(): Promise<void>;
}

/**
 * Starts a KV Connect server on 127.0.0.1.
 *
 * @example
 * ```ts
 * await using server = await startKvConnectServer({ token: "test-token-0123456789" });
 * Deno.env.set("DENO_KV_ACCESS_TOKEN", "test-token-0123456789");
 * using kv = await Deno.openKv(server.url);
 * ```
 */
export function startKvConnectServer(
  options: KvConnectServerOptions,
): Promise<KvConnectServer> {
  const limits = { ...DENOKV_LIMITS, ...options.limits };
  const now = options.now ?? Date.now;
  const store = createStore({ now });
  const identity: Identity = {
    accessToken: options.token,
    dataToken: crypto.randomUUID(),
    databaseId: crypto.randomUUID(),
  };
  const stats: KvConnectStats = {
    roundTrips: 0,
    metadataExchanges: 0,
    snapshotReads: 0,
    atomicWrites: 0,
    commits: 0,
    checkFailures: 0,
    refusedWrites: 0,
    refusals: {},
    limitRefusals: 0,
    faults: 0,
    appliedThenFailed: 0,
    watches: 0,
    enqueues: 0,
    droppedConnections: 0,
    dataRequests: 0,
    held: 0,
  };
  const faults = { data: [] as number[], metadata: [] as number[] };
  const afterApplying: { how: "5xx" | "drop"; match: (keys: Deno.KvKey[]) => boolean }[] = [];
  /** The fault for a write that committed with `keys`, taken off the list. */
  const appliedFault = (keys: Uint8Array[]) => {
    const index = afterApplying.findIndex(({ match }) => match(keys.map(decodeKey)));
    return index < 0 ? undefined : afterApplying.splice(index, 1)[0].how;
  };
  const watchers = new Set<Watcher>();
  let holding = false;
  const heldRequests = new Set<() => void>();
  const conditions = new Set<() => void>();
  const changed = () => conditions.forEach((check) => check());
  const until = (condition: (stats: KvConnectStats) => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => condition(stats) && (conditions.delete(check), resolve());
      conditions.add(check);
      check();
    });

  const context: DataPathContext = { store, limits, now };
  const dataPath = async (route: string, request: Request): Promise<Response> => {
    checkDataPathHeaders(request, identity);
    if (holding) {
      await new Promise<void>((resolve) => {
        heldRequests.add(resolve);
        stats.held = heldRequests.size;
        changed();
      });
    }
    // A client killed mid-request (a benchmark's SIGKILL) leaves a body that
    // cannot be read: nobody is there to answer, and it is no server error.
    const read = await request.arrayBuffer().catch(() => undefined);
    if (!read) return new Response(null, { status: 400 });
    const body = new Uint8Array(read);
    if (route === "snapshot_read") {
      const response = snapshotRead(context, body);
      stats.snapshotReads++;
      return response;
    }
    if (route === "atomic_write") {
      const { response, committed, enqueues, keys } = atomicWrite(context, body);
      stats.atomicWrites++;
      if (committed) stats.commits++;
      else stats.checkFailures++;
      stats.enqueues += enqueues;
      const fault = committed ? appliedFault(keys) : undefined;
      if (!fault) return response;
      stats.appliedThenFailed++;
      await response.body?.cancel();
      return fault === "5xx" ? text(503, MESSAGES.tryAgain) : resetStream();
    }
    const { response, watcher } = watch(context, body, (ended) => watchers.delete(ended));
    watchers.add(watcher);
    stats.watches++;
    return response;
  };

  const handle = async (request: Request): Promise<Response> => {
    stats.roundTrips++;
    const path = new URL(request.url).pathname;
    const route = path.match(/^\/v2\/(snapshot_read|atomic_write|watch)$/)?.[1];
    try {
      if (path !== "/" && !route) throw new ApiError(404, MESSAGES.notFound);
      if (request.method !== "POST") return new Response(null, { status: 405 });
      if (route) stats.dataRequests++;
      const fault = (route ? faults.data : faults.metadata).shift();
      if (fault !== undefined) {
        stats.faults++;
        await request.body?.cancel();
        return text(fault, fault === 500 ? MESSAGES.internal : MESSAGES.tryAgain);
      }
      if (route) return await dataPath(route, request);
      const metadata = await exchangeMetadata(request, identity);
      stats.metadataExchanges++;
      return Response.json(metadata);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (route === "atomic_write") stats.refusedWrites++;
      stats.refusals[error.reason] = (stats.refusals[error.reason] ?? 0) + 1;
      if (error.overLimit) stats.limitRefusals++;
      return text(error.status, error.message);
    } finally {
      changed();
    }
  };

  const network = listen(options.port ?? 0, handle, () => {
    stats.droppedConnections++;
    changed();
  });
  const url = `http://127.0.0.1:${network.port}`;
  const releaseAll = () => {
    holding = false;
    for (const resolve of heldRequests) resolve();
    heldRequests.clear();
    stats.held = 0;
  };
  const settle = () => {
    for (const watcher of [...watchers]) watcher.end();
    releaseAll();
  };
  const close = () => (settle(), network.close());
  // Awaited by contract, though starting needs no wait today.
  return Promise.resolve({
    url,
    port: network.port,
    stats,
    get size() {
      return store.size;
    },
    failNext(n, status = 503, where = "data") {
      faults[where].push(...Array.from({ length: n }, () => status));
    },
    applyThenFail(n, how = "5xx", match = () => true) {
      afterApplying.push(...Array.from({ length: n }, () => ({ how, match })));
    },
    hold() {
      holding = true;
    },
    release: releaseAll,
    until,
    unreachable: () => (settle(), network.drop()),
    reachable: () => network.serve(),
    close,
    [Symbol.asyncDispose]: close,
  });
}

/**
 * A response whose body fails before anything is sent: `Deno.serve` then
 * resets the request's HTTP/2 stream, and the client sees a network error.
 * (Deno prints the reason on standard error: a line, not a stack.)
 */
function resetStream(): Response {
  const body = new ReadableStream({
    start: (controller) => controller.error("kv_connect fake: dropped after the commit"),
  });
  return new Response(body);
}

function text(status: number, body: string): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}
