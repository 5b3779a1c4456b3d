/**
 * The job pipeline between the webhook and the worker. An accepted message
 * is recorded and its job scheduled in one atomic KV commit, which also
 * refuses a `MessageSid` seen before, so Twilio's retries do nothing.
 *
 * @module
 */
import type { InboundMessage } from "./twilio_webhook.ts";

/** An inbound message as kept in KV, with how far its job got. */
export interface MessageRecord extends InboundMessage {
  state: "queued" | "answered" | "failed";
}

/** What the queue carries: a reference, so payloads stay far below 64 KiB. */
export interface JobPayload {
  kind: "inbound";
  messageSid: string;
}

/** Runs one job; it settles its own failures and throws only when KV does. */
export type JobHandler = (messageSid: string) => Promise<void>;

/** One small interface over the ways jobs can be carried. */
export interface Jobs {
  /** `kv-queue` today; the Deno Deploy `outbox` backend plugs in here. */
  readonly backend: "kv-queue";
  /** Records the message and schedules its job, or says it was seen before. */
  submit(message: InboundMessage): Promise<"queued" | "duplicate">;
  /** Runs `handler` for each job until the KV is closed. */
  listen(handler: JobHandler): Promise<void>;
}

/** How long a `MessageSid` is remembered, and so deduplicated. */
export const MESSAGE_TTL_MS = 7 * 24 * 60 * 60 * 1000;

/** The KV key of an inbound message's record. */
export const messageKey = (sid: string): Deno.KvKey => ["messages", sid];

/** The KV key of a job that failed for good. */
export const deadLetterKey = (sid: string): Deno.KvKey => ["dead_letters", sid];

/**
 * The `kv-queue` backend: `kv.enqueue` and `kv.listenQueue`. A job KV could
 * not deliver after its retries lands in `["dead_letters", sid]`.
 *
 * @example
 * ```ts
 * const jobs = createKvQueueJobs(kv);
 * await jobs.submit(message); // "queued"
 * jobs.listen(async (sid) => console.log("answer", sid));
 * ```
 */
export function createKvQueueJobs(kv: Deno.Kv): Jobs {
  return {
    backend: "kv-queue",
    async submit(message) {
      const record: MessageRecord = { ...message, state: "queued" };
      const payload: JobPayload = { kind: "inbound", messageSid: message.messageSid };
      const result = await kv.atomic()
        .check({ key: messageKey(message.messageSid), versionstamp: null })
        .set(messageKey(message.messageSid), record, { expireIn: MESSAGE_TTL_MS })
        .enqueue(payload, {
          backoffSchedule: [1_000, 5_000, 30_000],
          keysIfUndelivered: [deadLetterKey(message.messageSid)],
        })
        .commit();
      return result.ok ? "queued" : "duplicate";
    },
    listen(handler) {
      return kv.listenQueue(async (payload: unknown) => {
        if (isJobPayload(payload)) await handler(payload.messageSid);
      });
    },
  };
}

function isJobPayload(value: unknown): value is JobPayload {
  const payload = value as JobPayload | null;
  return payload?.kind === "inbound" && typeof payload.messageSid === "string";
}
