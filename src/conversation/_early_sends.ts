/**
 * Sending the parts of an answer that are final while AYD still writes the
 * rest. Private helper of `handler.ts`.
 *
 * @module
 */
import type { Lease, MessageRecord } from "../jobs/mod.ts";
import { describeError, type Logger, maskPhone } from "../log.ts";
import { type PartMarkers, TwilioSendError, type WhatsAppSender } from "../whatsapp/mod.ts";

/** What early sending needs. */
export interface EarlySendDeps {
  lease: Lease;
  sender: WhatsAppSender;
  log: Logger;
  markers: PartMarkers;
  /** The body of part `index` as sent (its marker added). */
  label: (text: string, index: number) => string;
  /** Parts from this index on wait for the end of the answer. */
  limit: number;
  /**
   * Saves `record` (and `extra` writes) under the lease; false = the lease
   * is lost. May throw (KV trouble): early sending then stops, and
   * {@linkcode EarlySends.settled} rethrows it.
   */
  save: (record: MessageRecord, extra?: (op: Deno.AtomicOperation) => void) => Promise<boolean>;
  /** Adds the write that keeps part `index` in KV until the job ends. */
  keepPart: (op: Deno.AtomicOperation, index: number, body: string) => void;
  /** Hears of each part Twilio accepted (for the time-to-first-part metric). */
  onSent?: (index: number) => void;
}

/** The early sends of one answer. */
export interface EarlySends {
  /** A part that became final; sent once the parts before it went out. */
  offer(text: string, index: number): void;
  /** The answer is over: no send starts after this one; the one under way goes on. */
  stop(): void;
  /** Parts sent so far (always the first ones). */
  sent(): number;
  /**
   * Saves through the same queue as the counts of sent parts, so that the
   * later save always holds the latest count; `build` runs when it is the
   * turn. Never rejects: a failure shows in {@linkcode EarlySends.settled}.
   */
  saveInTurn(
    build: () => MessageRecord,
    extra?: (op: Deno.AtomicOperation) => void,
  ): Promise<boolean>;
  /**
   * Waits for the send under way and its save; `lost` = the lease went;
   * `uncertainSince` = the failed send of part `sent` may have reached
   * Twilio since then. Rejects with the first error a save threw.
   */
  settled(): Promise<{ sent: number; lost: boolean; uncertainSince?: number }>;
}

/**
 * Sends offered parts one at a time, in order. Each part is saved in KV
 * before it is sent and counted after, both under the lease, so a job
 * stopped between the two can ask Twilio whether that exact part went out.
 * A failed send stops early sending (the delivery after the answer retries
 * that part); with `total` markers nothing goes early, since the total is
 * not known yet. Every promise started here is handled: a save that throws
 * stops early sending and is reported by {@linkcode EarlySends.settled}.
 *
 * @example
 * ```ts
 * const early = sendEarly(record, {
 *   lease, sender, log, markers: "none", label: (text) => text.trimEnd(), limit: 19, save, keepPart,
 * });
 * early.offer("Part one…", 0);
 * early.stop();
 * const { sent } = await early.settled();
 * ```
 */
export function sendEarly(record: MessageRecord, deps: EarlySendDeps): EarlySends {
  const queue: { text: string; index: number }[] = [];
  const fields = { message_sid: record.messageSid, from: maskPhone(record.phone) };
  let sent = 0;
  let stopped = deps.markers === "total";
  let lost = false;
  let failure: { error: unknown } | undefined;
  let uncertainSince: number | undefined;
  let latest = record;
  let running: Promise<void> = Promise.resolve();
  let busy = false;
  let saves: Promise<unknown> = Promise.resolve();

  const inTurn = (step: () => Promise<boolean>): Promise<boolean> => {
    const result = saves.then(async () => {
      if (failure) return false;
      try {
        const ok = await step();
        if (!ok) stopped = lost = true;
        return ok;
      } catch (error) {
        failure = { error };
        stopped = true;
        return false;
      }
    });
    saves = result;
    return result;
  };

  async function sendOne(text: string, index: number): Promise<boolean> {
    const body = deps.label(text, index);
    const kept = await inTurn(() =>
      deps.save({ ...latest, sentParts: sent }, (op) => deps.keepPart(op, index, body))
    );
    if (!kept || !deps.lease.held()) {
      stopped = true;
      lost ||= !failure;
      return false;
    }
    try {
      await deps.sender.send({ to: record.phone, body });
    } catch (error) {
      stopped = true;
      if (error instanceof TwilioSendError) uncertainSince = error.uncertainSince;
      deps.log.warn("reply.failed", {
        ...fields,
        part: index + 1,
        reason: describeError(error),
        streaming: true,
      });
      return false;
    }
    sent = index + 1;
    deps.onSent?.(index);
    if (await inTurn(() => deps.save({ ...latest, sentParts: sent }))) {
      deps.log.info("reply.part_sent", { ...fields, part: sent, streaming: true });
    }
    return true;
  }

  async function run() {
    busy = true;
    try {
      while (queue.length > 0 && !stopped) {
        const { text, index } = queue.shift()!;
        if (!(await sendOne(text, index))) break;
      }
    } catch (error) {
      failure ??= { error };
      stopped = true;
    } finally {
      busy = false;
    }
  }

  return {
    offer(text, index) {
      if (stopped || index >= deps.limit) return;
      queue.push({ text, index });
      if (!busy) running = run();
    },
    stop() {
      stopped = true;
      queue.length = 0;
    },
    sent: () => sent,
    saveInTurn(build, extra) {
      return inTurn(() => {
        latest = build();
        return deps.save({ ...latest, sentParts: sent }, extra);
      });
    },
    async settled() {
      await running;
      await saves;
      if (failure) throw failure.error;
      return { sent, lost, uncertainSince };
    },
  };
}
