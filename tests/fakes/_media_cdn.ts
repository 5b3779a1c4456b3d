/**
 * The second host of fake Twilio's media: Twilio answers a media URL on its
 * API host with a redirect to a short-lived URL elsewhere, and this server
 * stands for that elsewhere. It serves the bytes without any credentials and
 * records a violation (answering 400) whenever a request carries an
 * `Authorization` header: Twilio's credentials must never travel along the
 * redirect. Private to the fakes.
 *
 * @module
 */

/** How the media host misbehaves, from now on, until changed. */
export interface MediaCdnBehaviour {
  /** Milliseconds before it answers. */
  delayMs?: number;
  /** Never answers (until the fake closes). */
  hang?: boolean;
  /** Sends this many bytes of the body, then stalls (until the fake closes). */
  stallAfterBytes?: number;
  /** Streams the body without a `Content-Length`, so only a running count sees its size. */
  chunked?: boolean;
  /** Answers this status (and a short XML error, as S3 does) instead of the bytes. */
  status?: number;
  /** Redirects this many more times, on this host, before serving. */
  hops?: number;
}

/** A running media host. */
export interface MediaCdn {
  url: string;
  /** One line per request that carried an `Authorization` header. */
  violations: string[];
  /** Requests it received. */
  readonly requests: number;
  /** Keeps `bytes` and gives the short-lived URL that serves them. */
  store(bytes: Uint8Array, contentType: string): string;
  behave(behaviour: MediaCdnBehaviour): void;
  close(): Promise<void>;
}

interface Stored {
  bytes: Uint8Array<ArrayBuffer>;
  contentType: string;
}

const CHUNK_BYTES = 64 * 1024;

/** Starts the media host on a random port of 127.0.0.1. */
export function startMediaCdn(): MediaCdn {
  const files = new Map<string, Stored>();
  const violations: string[] = [];
  const held = new Set<() => void>();
  let behaviour: MediaCdnBehaviour = {};
  let requests = 0;

  /** Resolves after `ms`, or never (until close) when `ms` is undefined. */
  const wait = (ms?: number) =>
    new Promise<void>((resolve) => {
      const release = () => {
        clearTimeout(timer);
        held.delete(release);
        resolve();
      };
      const timer = ms === undefined ? undefined : setTimeout(release, ms);
      held.add(release);
    });

  function body(bytes: Uint8Array, stallAfter: number | undefined): ReadableStream<Uint8Array> {
    let sent = 0;
    return new ReadableStream({
      async pull(controller) {
        if (sent >= bytes.length) return controller.close();
        if (stallAfter !== undefined && sent >= stallAfter) {
          await wait();
          return controller.close(); // at close: whoever still waits has given up
        }
        const end = Math.min(bytes.length, sent + CHUNK_BYTES, stallAfter ?? Infinity);
        controller.enqueue(bytes.slice(sent, end));
        sent = end;
      },
    });
  }

  async function serve(req: Request): Promise<Response> {
    requests++;
    const url = new URL(req.url);
    if (req.headers.has("authorization")) {
      violations.push(`${req.method} ${url.pathname} carried an Authorization header`);
      return s3Error(400, "InvalidArgument", "Only one auth mechanism allowed");
    }
    const { delayMs, hang, status, hops = 0, chunked, stallAfterBytes } = behaviour;
    if (hang) await wait();
    else if (delayMs) await wait(delayMs);
    const hop = Number(url.searchParams.get("hop") ?? 0);
    if (hop < hops) {
      url.searchParams.set("hop", String(hop + 1));
      return new Response(null, { status: 302, headers: { location: url.pathname + url.search } });
    }
    if (status) return s3Error(status, "InternalError", "Scripted failure");
    const file = files.get(url.pathname.slice("/media/".length));
    if (!file || !url.searchParams.has("Signature")) {
      return s3Error(403, "AccessDenied", "Request has expired");
    }
    const headers = new Headers({ "content-type": file.contentType });
    if (!chunked && stallAfterBytes === undefined) {
      headers.set("content-length", String(file.bytes.length));
      return new Response(file.bytes, { headers });
    }
    return new Response(body(file.bytes, stallAfterBytes), { headers });
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, serve);
  const url = `http://127.0.0.1:${server.addr.port}`;

  return {
    url,
    violations,
    get requests() {
      return requests;
    },
    store(bytes, contentType) {
      const id = crypto.randomUUID();
      files.set(id, { bytes: bytes.slice(), contentType });
      // Shaped like a pre-signed URL: the query is the secret part, never to be logged.
      const expires = Math.floor(Date.now() / 1000) + 300;
      return `${url}/media/${id}?Expires=${expires}&Signature=${crypto.randomUUID()}`;
    },
    behave(next) {
      behaviour = next;
    },
    async close() {
      for (const release of [...held]) release();
      await server.shutdown();
    },
  };
}

/** An error as S3 (where Twilio's media live) writes it. */
function s3Error(status: number, code: string, message: string): Response {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>${message}</Message></Error>`;
  return new Response(xml, { status, headers: { "content-type": "application/xml" } });
}
