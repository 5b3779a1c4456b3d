/**
 * A round-robin HTTP reverse proxy on 127.0.0.1 in front of several bridges,
 * as a load balancer in front of several instances: what lets the tests and
 * benchmarks deliver webhooks to "any of them".
 *
 * Requests go to the backends in turn, unchanged (method, path, query,
 * headers including `X-Twilio-Signature`, body), and their answers come back
 * unchanged. The signature stays valid because Twilio signs the public URL
 * (`TWILIO_WEBHOOK_URL`), not the address a request arrives at.
 *
 * A backend that cannot be reached is skipped and the request tried at the
 * next one, as a balancer's health check would take a dead instance out.
 * That includes a request that was sent and whose answer was lost (the
 * instance died mid-request): its webhook may have been accepted there, and
 * is then accepted again elsewhere, which the bridge answers as a duplicate
 * `MessageSid`. Only when no backend answers does the caller get a `502`.
 */

/** A running balancer. */
export interface Balancer extends AsyncDisposable {
  /** Where it listens, e.g. `http://127.0.0.1:40123`. */
  url: string;
  /** Requests each backend answered, by backend URL. */
  answered: Map<string, number>;
  /** Attempts that found their backend unreachable and went on to the next. */
  readonly skipped: number;
  close(): Promise<void>;
}

/** Headers that describe one hop, not the request: never forwarded. */
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "host",
  "content-length",
];

/**
 * Starts a balancer in front of `backends` (base URLs such as
 * `http://127.0.0.1:5000`).
 *
 * @example
 * ```ts
 * await using balancer = await startBalancer([a.url, b.url]);
 * await fetch(`${balancer.url}/whatsapp`, { method: "POST", body });
 * ```
 */
export function startBalancer(backends: readonly string[]): Promise<Balancer> {
  if (backends.length === 0) throw new Error("a balancer needs at least one backend");
  const answered = new Map(backends.map((url) => [url, 0]));
  let next = 0;
  let skipped = 0;

  async function forward(request: Request): Promise<Response> {
    const incoming = new URL(request.url);
    const headers = new Headers(request.headers);
    for (const name of HOP_BY_HOP) headers.delete(name);
    // Read once: a request may have to be sent to a second backend.
    const body = request.body ? new Uint8Array(await request.arrayBuffer()) : undefined;
    const first = next;
    next = (next + 1) % backends.length;
    for (let tried = 0; tried < backends.length; tried++) {
      const backend = backends[(first + tried) % backends.length];
      try {
        const response = await fetch(`${backend}${incoming.pathname}${incoming.search}`, {
          method: request.method,
          headers,
          body,
          redirect: "manual",
        });
        // The body is read here so that a backend dying mid-answer counts as unreachable.
        const answer = await response.arrayBuffer();
        answered.set(backend, (answered.get(backend) ?? 0) + 1);
        const out = new Headers(response.headers);
        for (const name of HOP_BY_HOP) out.delete(name);
        return new Response(nullBodyStatus(response.status) ? null : answer, {
          status: response.status,
          statusText: response.statusText,
          headers: out,
        });
      } catch {
        skipped++;
      }
    }
    return new Response("Bad Gateway: no backend answered", { status: 502 });
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, forward);
  const close = () => server.shutdown();
  return Promise.resolve({
    url: `http://127.0.0.1:${server.addr.port}`,
    answered,
    get skipped() {
      return skipped;
    },
    close,
    [Symbol.asyncDispose]: close,
  });
}

const nullBodyStatus = (status: number) => status === 204 || status === 205 || status === 304;
