/**
 * How work reaches the worker. An accepted message is recorded, put in its
 * sender's lane and (on `kv-queue`) announced, in one atomic KV commit that
 * also refuses a `MessageSid` seen before. Two backends carry the
 * announcements: `kv-queue` (`kv.enqueue` / `kv.listenQueue`) and `outbox`
 * (in-process start plus a cron sweep) for Deno Deploy, which has no queues.
 *
 * @module
 */
import { createGroupCommit, type GroupCommit } from "./_group_commit.ts";
import { addToLane } from "./lanes.ts";

/** The job backends. */
export type JobBackend = "kv-queue" | "outbox";

/** What the worker needs from an inbound WhatsApp message. */
export interface InboundMessage {
  messageSid: string;
  /** The sender as `+E164`, without the `whatsapp:` channel prefix. */
  phone: string;
  /** The text (or media caption); empty when there is none. */
  body: string;
  numMedia: number;
  /** When the webhook accepted it, in Unix milliseconds. */
  receivedAt: number;
  /** Set when the sender may not ask (then `body` is not kept). */
  refusal?: Refusal;
}

/** Why a message is not asked: not on the list, or over a limit until `until`. */
export type Refusal =
  | { kind: "denied" }
  | { kind: "rate_limited"; window: "minute" | "day"; until: number };

/** How far a message's job got. */
export type MessageState = "queued" | "asking" | "replying" | "answered" | "failed";

/** An inbound message as kept in KV, with its job's progress. */
export interface MessageRecord extends InboundMessage {
  state: MessageState;
  /** Attempts started so far. */
  attempt: number;
  /** Not before this time (Unix ms); 0 = now. */
  nextAttemptAt: number;
  /** Once the reply is known: how many parts it has, and how many went out. */
  parts?: number;
  sentParts?: number;
  outcome?: "answered" | "empty" | "not_text" | "command" | "denied" | "rate_limited" | "failed";
  lastError?: string;
}

/** What a queue message or a timer carries: which lane has work. */
export interface LaneTrigger {
  kind: "lane";
  phone: string;
}

/** Runs the lane of one number until it is empty, waiting, or not ours. */
export type DrainLane = (phone: string) => Promise<void>;

/** One small interface over the two backends. */
export interface Jobs {
  readonly backend: JobBackend;
  /**
   * Records the message and schedules its job in one commit with `extra`'s
   * mutations: `duplicate` when the `MessageSid` was seen before, `conflict`
   * when a check of `extra` failed (decide again and resubmit).
   */
  submit(
    message: InboundMessage,
    extra?: (op: Deno.AtomicOperation) => Deno.AtomicOperation,
  ): Promise<"queued" | "duplicate" | "conflict">;
  /** Delivers lane triggers to `drain` until {@linkcode Jobs.close}. */
  listen(drain: DrainLane): Promise<void>;
  /** Asks for the lane of `phone` to be drained after `delayMs`. */
  schedule(phone: string, delayMs: number): Promise<void>;
  /** Stops delivering triggers; what is pending stays in KV. */
  close(): void;
}

/** How long a `MessageSid` is remembered, and so deduplicated. */
export const MESSAGE_TTL_MS = 7 * 24 * 60 * 60 * 1000;

/** The KV key of an inbound message's record. */
export const messageKey = (sid: string): Deno.KvKey => ["messages", sid];

/** The KV key of a job that ended without an answer. */
export const deadLetterKey = (sid: string): Deno.KvKey => ["dead_letters", sid];

/** A fresh record for an accepted message. */
export function newRecord(message: InboundMessage): MessageRecord {
  return { ...message, state: "queued", attempt: 0, nextAttemptAt: 0 };
}

/**
 * Picks the backend: `JOB_BACKEND` when set, else `outbox` on Deno Deploy
 * (`DENO_DEPLOY` set) and `kv-queue` elsewhere.
 *
 * @example
 * ```ts
 * chooseBackend({ DENO_DEPLOY: "1" }); // "outbox"
 * ```
 */
export function chooseBackend(env: Record<string, string | undefined>): JobBackend {
  const forced = env.JOB_BACKEND?.trim();
  if (forced === "kv-queue" || forced === "outbox") return forced;
  return env.DENO_DEPLOY ? "outbox" : "kv-queue";
}

/**
 * Creates the chosen backend on `kv`.
 *
 * @example
 * ```ts
 * const jobs = createJobs(kv, "kv-queue");
 * await jobs.submit(message); // "queued"
 * ```
 */
export function createJobs(kv: Deno.Kv, backend: JobBackend): Jobs {
  // Webhooks that arrive together are committed together.
  const group = createGroupCommit(kv);
  return backend === "kv-queue" ? kvQueueJobs(kv, group) : outboxJobs(kv, group);
}

type Extra = ((op: Deno.AtomicOperation) => Deno.AtomicOperation) | undefined;

/** The commit shared by both backends, with its optional announcement. */
function accept(
  group: GroupCommit,
  message: InboundMessage,
  extra: Extra,
  announce: (op: Deno.AtomicOperation) => Deno.AtomicOperation = (op) => op,
) {
  const key = messageKey(message.messageSid);
  return group.commit((op) => {
    const accepted = addToLane(
      op.check({ key, versionstamp: null }).set(key, newRecord(message), {
        expireIn: MESSAGE_TTL_MS,
      }),
      message,
    );
    return announce(extra ? extra(accepted) : accepted);
  }, [message.messageSid, message.phone]);
}

/** Why an accepting commit failed. */
async function rejection(kv: Deno.Kv, message: InboundMessage) {
  const seen = await kv.get(messageKey(message.messageSid));
  return seen.versionstamp === null ? "conflict" : "duplicate";
}

function kvQueueJobs(kv: Deno.Kv, group: GroupCommit): Jobs {
  const trigger = (phone: string): LaneTrigger => ({ kind: "lane", phone });
  let startHere: DrainLane | undefined;
  return {
    backend: "kv-queue",
    async submit(message, extra) {
      const result = await accept(
        group,
        message,
        extra,
        (op) => op.enqueue(trigger(message.phone)),
      );
      if (!result.ok) return await rejection(kv, message);
      // Start at once instead of waiting for KV to deliver the queue message,
      // which stays the durable trigger (it finds the lane done or busy).
      startHere?.(message.phone).catch(() => {});
      return "queued";
    },
    listen(drain) {
      startHere = drain;
      return kv.listenQueue(async (payload: unknown) => {
        const lane = payload as LaneTrigger | null;
        if (lane?.kind === "lane" && typeof lane.phone === "string") await drain(lane.phone);
      });
    },
    async schedule(phone, delayMs) {
      await kv.enqueue(trigger(phone), { delay: Math.max(0, Math.round(delayMs)) });
    },
    close() {
      startHere = undefined; // kv.close() ends listenQueue
    },
  };
}

function outboxJobs(kv: Deno.Kv, group: GroupCommit): Jobs {
  let drain: DrainLane | undefined;
  let stopped: () => void = () => {};
  let closed = false;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const start = (phone: string) => {
    // The webhook does not wait: the record is durable and the sweep retries.
    if (drain && !closed) drain(phone).catch(() => {});
  };
  return {
    backend: "outbox",
    async submit(message, extra) {
      const result = await accept(group, message, extra);
      if (!result.ok) return await rejection(kv, message);
      start(message.phone);
      return "queued";
    },
    listen(drainLane) {
      drain = drainLane;
      return new Promise<void>((resolve) => stopped = resolve);
    },
    schedule(phone, delayMs) {
      if (closed) return Promise.resolve();
      const timer = setTimeout(() => {
        timers.delete(timer);
        start(phone);
      }, Math.max(0, delayMs));
      timers.add(timer);
      return Promise.resolve();
    },
    close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      stopped();
    },
  };
}
