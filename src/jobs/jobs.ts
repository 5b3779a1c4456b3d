/**
 * How work reaches the worker. An accepted message is recorded and given the
 * next place in its sender's lane in one atomic KV commit that also refuses
 * a `MessageSid` seen before, and its lane starts in this process at once.
 * Two backends schedule later looks (a retry's): `kv-queue` on KV's queue
 * (`kv.enqueue` / `kv.listenQueue`), `outbox` with timers and cron sweeps,
 * for where KV has no queues (Deno Deploy, KV Connect).
 *
 * @module
 */
import { createGroupCommit, type GroupCommit } from "./_group_commit.ts";
import { expireAt, type StorageHealth } from "../storage/mod.ts";
import { addToLane, laneKey } from "./lanes.ts";
import type { AttemptHistory } from "./attempts.ts";

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
  /**
   * The media Twilio announced (`MediaUrlN`, `MediaContentTypeN`), when any:
   * a WhatsApp message has at most one. The URLs need the account's Basic
   * auth and must be fetched only from Twilio's API host.
   */
  media?: InboundMedium[];
  /** When the webhook accepted it, in Unix milliseconds. */
  receivedAt: number;
  /** Set when the sender may not ask (then `body` is not kept). */
  refusal?: Refusal;
  /**
   * The webhook's trace context (W3C `traceparent`, `tracestate`) when
   * OpenTelemetry is on, so the worker's spans join the webhook's trace,
   * also after a restart or on another instance.
   */
  trace?: Record<string, string>;
}

/** One medium of an inbound message, as Twilio announced it. */
export interface InboundMedium {
  /** An http(s) URL, on Twilio's API host when it came from Twilio. */
  url: string;
  /** Its type as Twilio gave it, e.g. `audio/ogg` for a WhatsApp voice note. */
  contentType: string;
}

/** Why a message is not asked: not on the list, or over a limit until `until`. */
export type Refusal =
  | { kind: "denied" }
  | { kind: "rate_limited"; window: "minute" | "day"; until: number };

/** How far a message's job got. */
export type MessageState = "queued" | "asking" | "replying" | "answered" | "failed";

/** An inbound message as kept in KV, with its job's progress. */
export interface MessageRecord extends InboundMessage {
  /**
   * Its place in the sender's lane, decided by the accepting commit (absent
   * in records written before it existed, whose place was `receivedAt`).
   */
  seq?: number;
  state: MessageState;
  /** Attempts started so far. */
  attempt: number;
  /** Not before this time (Unix ms); 0 = now. */
  nextAttemptAt: number;
  /** Once the reply is known: how many parts it has, and how many went out. */
  parts?: number;
  sentParts?: number;
  outcome?:
    | "answered"
    | "empty"
    | "not_text"
    | "not_understood"
    | "command"
    | "denied"
    | "rate_limited"
    | "merged"
    | "failed";
  /**
   * What is asked when it is not `body`: a voice note's transcript, or the
   * pieces of a question typed as several messages, joined one per line.
   */
  question?: string;
  /** A voice note's transcript, once made: it is never made again. */
  transcript?: string;
  /** When the transcript's echo (`🎤 _…_`) started going out, and whether it did. */
  echo?: { since: number; sent: boolean };
  /** The messages joined into this one's question (their MessageSids). */
  merged?: string[];
  /** The message whose question this one's text joined. */
  mergedInto?: string;
  /** The newest failure's reason; {@linkcode MessageRecord.history} has them all. */
  lastError?: string;
  /** Every failed attempt's reason, first cause first (bounded). */
  history?: AttemptHistory;
  /** The apology this record's reply is, when it is one: a dead letter remembers what the user was told. */
  apology?: string;
  /** Set when the message was put back in line from its dead letter. */
  retried?: RetryOf;
  /** When this record was last saved (Unix ms): a send after it may have reached Twilio. */
  savedAt?: number;
  /**
   * A random id of the webhook commit that stored it, so that a commit that
   * landed but whose answer was lost (and whose copy then failed its check)
   * knows the record for its own.
   */
  acceptId?: string;
  /** When it is forgotten (Unix ms), and its `MessageSid` with it. */
  expiresAt?: number;
  /**
   * Since when (Unix ms) a send of part `sentParts` may have reached Twilio
   * although it failed (its outcome was unknown): look before resending.
   */
  sendingSince?: number;
  /**
   * Chat mode: where the current attempt asks (or asked) its question, the
   * chat and its newest message just before (`null`: the chat was empty;
   * absent: not known), so that an interrupted ask can be found in the
   * chat's history instead of asked again.
   */
  askedIn?: { chatid: string; anchor?: string | null };
}

/** What a message retried from its dead letter carries from before. */
export interface RetryOf {
  /** 1 for the first retry, and so on. */
  round: number;
  /** When the message first arrived (its record's `receivedAt` is the retry's). */
  receivedAt: number;
  /** Attempts of the runs before. */
  attemptsBefore: number;
  /** The apologies the user received for this message already. */
  told: string[];
}

/**
 * One number's state, `["numbers", phone]`: the place its last accepted
 * message took in its lane, and the webhook's rate counters (opaque here).
 * Every accepting commit checks and rewrites it, so places follow the order
 * of the commits, whatever the clocks of the instances say.
 */
export interface NumberState {
  seq: number;
  rate?: unknown;
  /** When it is forgotten, unless the number writes again (Unix ms). */
  expiresAt?: number;
}

/** The KV key of a number's state. */
export const numberKey = (phone: string): Deno.KvKey => ["numbers", phone];

/**
 * Reads a number's state, to decide on a message and then submit it with it.
 *
 * @example
 * ```ts
 * const number = await readNumberState(kv, "+15551234567");
 * ```
 */
export function readNumberState(
  kv: Deno.Kv,
  phone: string,
): Promise<Deno.KvEntryMaybe<NumberState>> {
  return kv.get<NumberState>(numberKey(phone));
}

/** How long a number's state outlives its last message. */
const NUMBER_TTL_MS = 8 * 24 * 60 * 60 * 1000;

/** The place of a message in its lane; old records had none and used their arrival. */
export const placeOf = (record: MessageRecord): number => record.seq ?? record.receivedAt;

/**
 * Adds to `op` what gives `message` the next place in its lane: a check of
 * the number's state as read (`number`), its rewrite with the new place and
 * `rate` counters, the message's record, and the lane entry. Places are
 * never below the arrival time, so lanes written before places existed
 * (keyed by arrival) keep their order.
 *
 * @example
 * ```ts
 * const number = await kv.get<NumberState>(numberKey(message.phone));
 * await enqueueMessage(kv.atomic(), message, number).commit();
 * ```
 */
export function enqueueMessage(
  op: Deno.AtomicOperation,
  message: InboundMessage,
  number: Deno.KvEntryMaybe<NumberState>,
  rate: unknown = number.value?.rate,
): Deno.AtomicOperation {
  const seq = Math.max((number.value?.seq ?? 0) + 1, message.receivedAt);
  const expiresAt = message.receivedAt + NUMBER_TTL_MS;
  const state: NumberState = rate === undefined ? { seq, expiresAt } : { seq, rate, expiresAt };
  const record = newRecord(message, seq);
  op.check(number).set(numberKey(message.phone), state)
    .set(messageKey(message.messageSid), record);
  expireAt(op, numberKey(message.phone), expiresAt);
  expireAt(op, messageKey(message.messageSid), record.expiresAt!);
  return addToLane(op, {
    phone: message.phone,
    seq,
    messageSid: message.messageSid,
    touchedAt: message.receivedAt,
  });
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
   * mutations, `number` being its sender's state as read and `rate` the
   * counters to store there: `duplicate` when the `MessageSid` was seen
   * before, `conflict` when the number's state changed since it was read or
   * a check of `extra` failed (read, decide again and resubmit).
   */
  submit(message: InboundMessage, options: {
    number: Deno.KvEntryMaybe<NumberState>;
    rate?: unknown;
    extra?: (op: Deno.AtomicOperation) => Deno.AtomicOperation;
  }): Promise<"queued" | "duplicate" | "conflict">;
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

/** A fresh record for an accepted message at place `seq` of its lane. */
export function newRecord(message: InboundMessage, seq: number): MessageRecord {
  const expiresAt = message.receivedAt + MESSAGE_TTL_MS;
  return { ...message, seq, state: "queued", attempt: 0, nextAttemptAt: 0, expiresAt };
}

/** What is asked for a message: its question when it has one (a transcript, joined pieces), else its text. */
export const questionOf = (record: MessageRecord): string => record.question ?? record.body;

/** When a record is forgotten: `MESSAGE_TTL_MS` after its arrival. */
export const expiresAtOf = (record: MessageRecord): number =>
  record.expiresAt ?? record.receivedAt + MESSAGE_TTL_MS;

/**
 * Picks the backend: `JOB_BACKEND` when set, else `outbox` where KV has no
 * queues (Deno Deploy, `DENO_DEPLOY` set; a remote KV over KV Connect,
 * `DENO_KV_URL` set) and `kv-queue` elsewhere.
 *
 * @example
 * ```ts
 * chooseBackend({ DENO_DEPLOY: "1" }); // "outbox"
 * chooseBackend({ DENO_KV_URL: "http://denokv-host:4512" }); // "outbox"
 * ```
 */
export function chooseBackend(env: Record<string, string | undefined>): JobBackend {
  const forced = env.JOB_BACKEND?.trim();
  if (forced === "kv-queue" || forced === "outbox") return forced;
  return env.DENO_DEPLOY || env.DENO_KV_URL?.trim() ? "outbox" : "kv-queue";
}

/** What a backend may use beyond the KV itself. */
export interface JobsOptions {
  /**
   * `kv-queue`: opens the handle its queue listens on (the same database
   * opened again). Kept apart so that the listener can be stopped while
   * writes fail: Deno's SQLite queue panics when it takes a message off a
   * full disk. Default: the queue of `kv`, never stopped.
   */
  openQueue?: () => Promise<Deno.Kv>;
  /** Says when writes fail and work again; `kv-queue` listens only while they work. */
  health?: StorageHealth;
  /** The process's group committer, shared with the lanes (default: one of its own). */
  commits?: GroupCommit;
}

/**
 * Creates the chosen backend on `kv`. Both start an accepted message's lane
 * in this process at once (the message is durable; a sweep finds it after a
 * crash); they differ in how a later look is scheduled: `kv-queue` puts a
 * delayed message on KV's queue, which survives a restart, `outbox` sets a
 * timer, and the sweeps cover a restart.
 *
 * @example
 * ```ts
 * const jobs = createJobs(kv, "kv-queue");
 * await jobs.submit(message, { number: await kv.get(numberKey(message.phone)) }); // "queued"
 * ```
 */
export function createJobs(kv: Deno.Kv, backend: JobBackend, options: JobsOptions = {}): Jobs {
  // Webhooks that arrive together are committed together.
  const group = options.commits ?? createGroupCommit(kv);
  let drain: DrainLane | undefined;
  let closed = false;
  let stopped: () => void = () => {};
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const start = (phone: string) => {
    // The webhook does not wait: the record is durable and the sweep retries.
    if (drain && !closed) drain(phone).catch(() => {});
  };
  const later = (phone: string, delayMs: number) => {
    if (closed) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      start(phone);
    }, Math.max(0, delayMs));
    timers.add(timer);
  };
  const queue = backend === "kv-queue" ? durableQueue(kv, options, start) : undefined;
  return {
    backend,
    async submit(message, submitted) {
      const acceptId = crypto.randomUUID();
      const result = await accept(group, { ...message, acceptId }, submitted);
      if (!result.ok) {
        const why = await rejection(kv, message, acceptId);
        if (why !== "landed") return why;
      }
      start(message.phone);
      return "queued";
    },
    listen(drainLane) {
      drain = drainLane;
      queue?.start();
      return new Promise<void>((resolve) => stopped = resolve);
    },
    async schedule(phone, delayMs) {
      if (closed) return;
      if (!(await queue?.enqueue(phone, delayMs))) later(phone, delayMs);
    },
    close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      queue?.stop();
      stopped();
    },
  };
}

type Submit = Jobs["submit"];

/** The commit shared by both backends; `acceptId` goes into the record. */
function accept(
  group: GroupCommit,
  message: InboundMessage & { acceptId: string },
  options: Parameters<Submit>[1],
) {
  const key = messageKey(message.messageSid);
  return group.commit((op) => {
    const accepted = enqueueMessage(
      op.check({ key, versionstamp: null }),
      message,
      options.number,
      options.rate,
    );
    return options.extra ? options.extra(accepted) : accepted;
  }, [message.messageSid, message.phone]);
}

/**
 * Why an accepting commit failed: the number's state changed (`conflict`),
 * the `MessageSid` was stored before (`duplicate`), or it was stored by this
 * very commit (`landed`). Over KV Connect a commit can land and its answer
 * be lost; Deno's client then sends it again, and the copy fails its check
 * on the record the first one wrote. That record carries this commit's
 * `acceptId`, and its lane must start like any other.
 */
async function rejection(kv: Deno.Kv, message: InboundMessage, acceptId: string) {
  const seen = await kv.get<MessageRecord>(messageKey(message.messageSid));
  if (seen.value === null) return "conflict";
  return seen.value.acceptId === acceptId ? "landed" : "duplicate";
}

/**
 * KV's queue for later looks at a lane, listened to on its own handle while
 * writes work, and not at all while they fail (the timers stand in).
 */
function durableQueue(kv: Deno.Kv, options: JobsOptions, start: (phone: string) => void) {
  const trigger = (phone: string): LaneTrigger => ({ kind: "lane", phone });
  let handle: Deno.Kv | undefined;
  let opening: Promise<void> | undefined;
  let stopped = false;
  let unsubscribe = () => {};

  const listen = (queueKv: Deno.Kv) =>
    queueKv.listenQueue(async (payload: unknown) => {
      const lane = payload as LaneTrigger | null;
      if (lane?.kind !== "lane" || typeof lane.phone !== "string") return;
      // A look that finds the lane empty costs one read, not a lease.
      if ((await kv.get(laneKey(lane.phone))).versionstamp === null) return;
      // Not awaited: a handler that waited for the lane's run would hold
      // one of the queue's few dispatch slots for a whole answer.
      start(lane.phone);
    }).catch(() => {});

  const open = () =>
    opening ??= (async () => {
      try {
        const queueKv = options.openQueue ? await options.openQueue() : kv;
        if (stopped || options.health?.trouble()) return closeHandle(queueKv);
        handle = queueKv;
        listen(queueKv);
      } catch (error) {
        options.health?.failed(error);
      } finally {
        opening = undefined;
      }
    })();

  function closeHandle(queueKv: Deno.Kv | undefined) {
    // The shared handle is the caller's to close.
    if (queueKv && queueKv !== kv) queueKv.close();
  }

  const close = () => {
    const queueKv = handle;
    handle = undefined;
    closeHandle(queueKv);
  };

  return {
    start() {
      unsubscribe = options.health?.onChange((trouble) => trouble ? close() : open()) ??
        (() => {});
      open();
    },
    /** Resolves false when the queue cannot take it now (use a timer). */
    async enqueue(phone: string, delayMs: number): Promise<boolean> {
      if (!handle) return false;
      try {
        await handle.enqueue(trigger(phone), { delay: Math.max(0, Math.round(delayMs)) });
        return true;
      } catch (error) {
        options.health?.failed(error);
        return false;
      }
    },
    stop() {
      stopped = true;
      unsubscribe();
      close();
    },
  };
}
