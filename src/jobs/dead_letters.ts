/**
 * Dead letters: messages whose job ended without an answer, kept with their
 * reason under `["dead_letters", MessageSid]` for as long as the message.
 *
 * @module
 */
import {
  deadLetterKey,
  enqueueMessage,
  type JobBackend,
  type LaneTrigger,
  messageKey,
  type MessageRecord,
  numberKey,
  type NumberState,
} from "./jobs.ts";
import { failuresKey } from "./runner.ts";

/** A job that ended without answering its message. */
export interface DeadLetter {
  messageSid: string;
  phone: string;
  reason: string;
  attempts: number;
  failedAt: number;
}

/**
 * Every dead letter, oldest first.
 *
 * @example
 * ```ts
 * for (const letter of await listDeadLetters(kv)) console.log(letter.messageSid, letter.reason);
 * ```
 */
export async function listDeadLetters(kv: Deno.Kv): Promise<DeadLetter[]> {
  const letters = await Array.fromAsync(kv.list<DeadLetter>({ prefix: ["dead_letters"] }));
  return letters.map((entry) => entry.value).sort((a, b) => a.failedAt - b.failedAt);
}

/** What retrying a dead letter came to. */
export type RetryOutcome = "queued" | "not_found" | "message_expired" | "changed";

/**
 * Puts a dead letter's message back at the end of its sender's lane, as if
 * it had just arrived (a fresh retry budget), and removes the dead letter.
 * A running bridge picks it up at once (same process) or at its next sweep,
 * within a minute.
 *
 * @example
 * ```ts
 * await retryDeadLetter(kv, "SM…", { backend: "kv-queue" }); // "queued"
 * ```
 */
export async function retryDeadLetter(
  kv: Deno.Kv,
  messageSid: string,
  options: { backend: JobBackend; now?: number },
): Promise<RetryOutcome> {
  const [letter, record] = await kv.getMany<[DeadLetter, MessageRecord]>([
    deadLetterKey(messageSid),
    messageKey(messageSid),
  ]);
  if (!letter.value) return "not_found";
  if (!record.value) return "message_expired";
  const { messageSid: sid, phone, body, numMedia, media } = record.value;
  const message = {
    messageSid: sid,
    phone,
    body,
    numMedia,
    media,
    receivedAt: options.now ?? Date.now(),
  };
  const number = await kv.get<NumberState>(numberKey(phone));
  const op = enqueueMessage(
    kv.atomic().check(letter).delete(deadLetterKey(sid)).delete(failuresKey(sid)),
    message,
    number,
  ).check(record);
  if (options.backend === "kv-queue") op.enqueue({ kind: "lane", phone } satisfies LaneTrigger);
  return (await op.commit()).ok ? "queued" : "changed";
}
