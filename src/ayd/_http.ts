/**
 * The error every AYD call fails with, and the helpers that turn transport
 * trouble, statuses and bodies into it. Private to `src/ayd/`.
 *
 * @module
 */

/**
 * Why a call to AYD failed: `unauthorized` (401: an expired token in session
 * mode, a refused API key in chat mode), `http` (another status), `network`
 * (no answer, or a cut stream), `timeout`, or `protocol` (an answer of the
 * wrong shape).
 */
export class AydError extends Error {
  override name = "AydError";
  constructor(
    readonly kind: "unauthorized" | "http" | "network" | "timeout" | "protocol",
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** Runs a network step, turning aborts and transport errors into AydError. */
export async function call<T>(step: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof AydError) throw error;
    if (signal?.aborted) throw new AydError("timeout", "AYD did not answer in time");
    throw new AydError("network", `AYD unreachable: ${(error as Error).message}`);
  }
}

/** The body as JSON, or a `protocol` error. */
export async function readJson(response: Response, signal?: AbortSignal): Promise<unknown> {
  const text = await call(() => response.text(), signal);
  try {
    return JSON.parse(text);
  } catch {
    throw new AydError("protocol", "answer is not JSON");
  }
}

/** The error for a status that is not a success; the body is dropped unread. */
export async function httpError(step: string, response: Response): Promise<AydError> {
  await response.body?.cancel();
  const kind = response.status === 401 ? "unauthorized" : "http";
  return new AydError(kind, `${step} answered ${response.status}`, response.status);
}
