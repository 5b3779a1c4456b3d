/**
 * The fake's port: HTTP (`Deno.serve`, which also speaks the cleartext
 * HTTP/2 the Deno client uses), or, while "unreachable", a bare TCP listener
 * on the same port that closes every connection it accepts.
 *
 * @module
 */

/** What {@linkcode listen} returns. */
export interface Network {
  readonly port: number;
  /** Serves HTTP again (after {@linkcode drop}). */
  serve(): Promise<void>;
  /** Stops serving HTTP and drops every new connection. */
  drop(): Promise<void>;
  /** Stops listening altogether. */
  close(): Promise<void>;
}

/**
 * Serves `handler` on 127.0.0.1:`port` (0: any free port).
 *
 * @example
 * ```ts
 * const network = listen(0, async () => new Response("ok"), () => {});
 * await network.close();
 * ```
 */
export function listen(
  port: number,
  handler: (request: Request) => Promise<Response>,
  onDropped: () => void,
): Network {
  let http: Deno.HttpServer | undefined;
  let tcp: { listener: Deno.Listener; done: Promise<void> } | undefined;

  const startHttp = (on: number) => {
    http = Deno.serve({ hostname: "127.0.0.1", port: on, onListen() {} }, handler);
    return (http.addr as Deno.NetAddr).port;
  };
  const stopHttp = async () => {
    await http?.shutdown();
    http = undefined;
  };
  const stopTcp = async () => {
    tcp?.listener.close();
    await tcp?.done;
    tcp = undefined;
  };
  const bound = startHttp(port);

  return {
    port: bound,
    async serve() {
      await stopTcp();
      if (!http) startHttp(bound);
    },
    async drop() {
      await stopHttp();
      if (tcp) return;
      const listener = Deno.listen({ hostname: "127.0.0.1", port: bound });
      const done = (async () => {
        try {
          for await (const connection of listener) {
            connection.close();
            onDropped();
          }
        } catch {
          // closed while accepting
        }
      })();
      tcp = { listener, done };
    },
    async close() {
      await stopTcp();
      await stopHttp();
    },
  };
}
