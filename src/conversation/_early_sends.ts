/**
 * Sending the parts of an answer that are final while AYD still writes the
 * rest. Private helper of `handler.ts`.
 *
 * @module
 */
import type { Lease, MessageRecord } from "../jobs/mod.ts";
import { describeError, type Logger, maskPhone } from "../log.ts";
import type { PartMarkers, WhatsAppSender } from "../whatsapp/mod.ts";

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
  /** Saves `record` (and `extra` writes) under the lease; false = the lease is lost. */
  save: (record: MessageRecord, extra?: (op: Deno.AtomicOperation) => void) => Promise<boolean>;
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
   * later save always holds the latest count; `build` runs when it is the turn.
   */
  saveInTurn(
    build: () => MessageRecord,
    extra?: (op: Deno.AtomicOperation) => void,
  ): Promise<boolean>;
  /** Waits for the send under way and its save; `lost` = the lease went. */
  settled(): Promise<{ sent: number; lost: boolean }>;
}

/**
 * Sends offered parts one at a time, in order, saving the count after each
 * under the lease. A failed send stops early sending (the delivery after the
 * answer retries that part); with `total` markers nothing goes early, since
 * the total is not known yet.
 *
 * @example
 * ```ts
 * const early = sendEarly(record, {
 *   lease, sender, log, markers: "none", label: (text) => text.trimEnd(), limit: 19, save,
 * });
 * early.offer("Part one…", 0);
 * early.stop();
 * const { sent } = await early.settled();
 * ```
 */
export function sendEarly(record: MessageRecord, deps: EarlySendDeps): EarlySends {
  const queue: { text: string; index: number }[] = [];
  let sent = 0;
  let stopped = deps.markers === "total";
  let lost = false;
  let latest = record;
  let running: Promise<void> = Promise.resolve();
  let busy = false;
  let saves: Promise<unknown> = Promise.resolve();
  const inTurn = (step: () => Promise<boolean>): Promise<boolean> => {
    const result = saves.then(step).then((ok) => {
      if (!ok) stopped = lost = true;
      return ok;
    });
    saves = result;
    return result;
  };

  async function run() {
    busy = true;
    while (queue.length > 0 && !stopped) {
      const { text, index } = queue.shift()!;
      if (!deps.lease.held()) {
        stopped = lost = true;
        break;
      }
      try {
        const body = deps.label(text, index);
        await deps.sender.send({ to: record.phone, body });
      } catch (error) {
        stopped = true;
        deps.log.warn("reply.failed", {
          message_sid: record.messageSid,
          from: maskPhone(record.phone),
          part: index + 1,
          reason: describeError(error),
          streaming: true,
        });
        break;
      }
      sent = index + 1;
      const saved = await inTurn(() => deps.save({ ...latest, sentParts: sent }));
      if (saved) {
        deps.log.info("reply.part_sent", {
          message_sid: record.messageSid,
          from: maskPhone(record.phone),
          part: sent,
          streaming: true,
        });
      }
    }
    busy = false;
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
      return { sent, lost };
    },
  };
}
