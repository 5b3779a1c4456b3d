/** A dead letter's story as data: its notes, its summary, what a retry carries and will do. */
import assert from "node:assert/strict";
import {
  addNote,
  apologyWithheld,
  type AttemptHistory,
  type AttemptNote,
  type DeadLetter,
  deadLetterKey,
  deadLetterOf,
  failureKindOf,
  HISTORY_FIRST,
  HISTORY_LAST,
  historyOf,
  messageKey,
  type MessageRecord,
  newRecord,
  retryDeadLetter,
  retryPlan,
} from "../../src/jobs/mod.ts";

const SORRY = "Sorry, something went wrong. Please try again.";
const SLOW = "Sorry, the request took too long. Please try again.";

const note = (attempt: number, kind: AttemptNote["kind"] = "ayd", round = 0): AttemptNote => ({
  round,
  attempt,
  at: 1_000 + attempt,
  kind,
  error: `error ${attempt}`,
});

function record(overrides: Partial<MessageRecord> = {}): MessageRecord {
  const message = {
    messageSid: "SM1",
    phone: "+15551234567",
    body: "how many orders?",
    numMedia: 0,
    receivedAt: Date.UTC(2026, 11, 1, 10, 0, 0),
  };
  return { ...newRecord(message, 1), ...overrides };
}

const history = (...notes: AttemptNote[]): AttemptHistory => ({ notes, omitted: 0 });

Deno.test("attempts - the first notes and the last ones are kept, and how many went between", () => {
  let kept: AttemptHistory | undefined;
  for (let attempt = 1; attempt <= 25; attempt++) kept = addNote(kept, note(attempt));
  assert.equal(kept!.notes.length, HISTORY_FIRST + HISTORY_LAST);
  assert.deepEqual(kept!.notes.map((n) => n.attempt), [1, 2, 3, 19, 20, 21, 22, 23, 24, 25]);
  assert.equal(kept!.omitted, 15);
});

Deno.test("attempts - a note never keeps a whole phone number", () => {
  const kept = addNote(undefined, {
    ...note(1, "twilio"),
    error: "TwilioSendError: The 'To' number whatsapp:+15551234567 is not valid",
  });
  assert.equal(
    kept.notes[0].error,
    "TwilioSendError: The 'To' number whatsapp:+*******4567 is not valid",
  );
});

Deno.test("attempts - what failed is told by the error's name, and KV's refusals are storage", () => {
  assert.equal(failureKindOf("AydError: ask answered 500"), "ayd");
  assert.equal(failureKindOf("TwilioSendError: Twilio answered 503"), "twilio");
  assert.equal(failureKindOf("SpeechError: transcription did not answer in time"), "transcription");
  assert.equal(failureKindOf("MediaError: media answered 404"), "transcription");
  assert.equal(failureKindOf(new TypeError("Value too large (max 65536 bytes)")), "storage");
  assert.equal(failureKindOf("gave up after 5 failed runs: TypeError: x is undefined"), "bridge");
  assert.equal(failureKindOf("the message expired before it was answered"), "bridge");
});

Deno.test("attempts - the dead letter's summary is the first cause; attempts and apologies add up over retries", () => {
  const first = record({
    attempt: 2,
    history: history(note(1), note(2), note(2, "twilio")),
    lastError: "error 2 (twilio)",
  });
  const letter = deadLetterOf(first, first, 5_000);
  assert.equal(letter.reason, "error 1");
  assert.equal(letter.attempts, 2);
  assert.equal(letter.receivedAt, first.receivedAt);
  assert.deepEqual(letter.told, []);
  assert.equal(letter.retries, 0);

  const retried = record({
    attempt: 3,
    receivedAt: 9_000,
    history: history(note(1), note(1, "ayd", 1)),
    retried: { round: 1, receivedAt: first.receivedAt, attemptsBefore: 2, told: [SORRY] },
  });
  const again = deadLetterOf(retried, retried, 10_000, SORRY);
  assert.equal(again.attempts, 5);
  assert.equal(again.receivedAt, first.receivedAt, "when the message first arrived");
  assert.deepEqual(again.told, [SORRY], "an apology is counted once");
  assert.equal(again.retries, 1);
  assert.deepEqual(deadLetterOf(retried, retried, 10_000, SLOW).told, [SORRY, SLOW]);
});

Deno.test("attempts - a retry's apology is withheld when the user has one and it failed the same way or would say the same", () => {
  const told = { round: 1, receivedAt: 1, attemptsBefore: 1, told: [SORRY] };
  const aydFirst = history(note(1, "ayd"), note(1, "ayd", 1));
  assert.equal(apologyWithheld(record({ history: aydFirst }), "ayd", SORRY), false, "not a retry");
  const retried = record({ history: aydFirst, retried: told });
  assert.equal(apologyWithheld(retried, "ayd", SLOW), true, "the same kind as the first cause");
  assert.equal(apologyWithheld(retried, "twilio", SORRY), true, "word for word what they have");
  assert.equal(apologyWithheld(retried, "twilio", SLOW), false, "another way, and news");
  assert.equal(
    apologyWithheld({ ...retried, sentParts: 1 }, "ayd", SORRY),
    false,
    "part of this answer went out: the user must hear the rest was lost",
  );
  assert.equal(
    apologyWithheld(record({ history: aydFirst, retried: { ...told, told: [] } }), "ayd", SORRY),
    false,
    "never told: they get the apology now",
  );
});

Deno.test("attempts - the plan says what a retry asks, what the user has and what happens next", () => {
  const at = Date.UTC(2026, 11, 1, 10, 0, 0);
  const letter: DeadLetter = {
    messageSid: "SM1",
    phone: "+15551234567",
    reason: "AydError: ask answered 500",
    attempts: 1,
    failedAt: at + 5_000,
    receivedAt: at,
    history: history(note(1)),
    told: [SORRY],
  };
  assert.equal(
    retryPlan(letter, record()),
    "Asks AYD again the question received at 2026-12-01 10:00:00 UTC. The user already " +
      `received the apology ("${SORRY}"): if it fails the same way (AYD again), they are not ` +
      "messaged again; if it fails another way, they get that failure's reply unless they have " +
      "it already; if it succeeds, they get the answer.",
  );
  assert.match(
    retryPlan({ ...letter, told: [] }, record()),
    /\. No apology reached the user: if it fails, they get one;/,
  );
  assert.match(
    retryPlan({ ...letter, told: undefined, history: undefined }, record()),
    /kept by an earlier version, does not say whether the user was told/,
  );
  assert.match(retryPlan(letter, undefined), /^Cannot be retried: its message is no longer stored/);
  const voice = record({
    body: "",
    numMedia: 1,
    media: [{ url: "https://api.twilio.com/m", contentType: "audio/ogg" }],
  });
  assert.match(
    retryPlan(letter, voice),
    /^Transcribes the voice note received at .* and asks AYD\./,
  );
  assert.match(
    retryPlan(letter, { ...voice, transcript: "orders?" }),
    /^Asks AYD again the voice note's transcript received at /,
  );
  assert.match(
    retryPlan(letter, record({ merged: ["SM2", "SM3"] })),
    /^Asks AYD again the question received at .* UTC \(3 pieces joined\)\./,
  );
  assert.match(
    retryPlan(letter, record({ refusal: { kind: "rate_limited", window: "minute", until: at } })),
    /^Does not ask AYD \(the number was over its rate limit\)/,
  );
  assert.doesNotMatch(retryPlan(letter, record()), /how many orders|15551234567/);
});

Deno.test("attempts - a retry carries the story and what was made of the message, and arrives now", async () => {
  using kv = await Deno.openKv(":memory:");
  const original = record({
    state: "failed",
    attempt: 2,
    transcript: "how many orders?",
    question: "how many orders?",
    echo: { since: 1, sent: false },
    history: history(note(1), note(2)),
  });
  const letter = deadLetterOf(original, original, original.receivedAt + 10_000, SORRY);
  await kv.atomic().set(messageKey("SM1"), original).set(deadLetterKey("SM1"), letter).commit();
  const now = original.receivedAt + 60_000;
  assert.equal(await retryDeadLetter(kv, "SM1", { backend: "outbox", now }), "queued");
  const retried = (await kv.get<MessageRecord>(messageKey("SM1"))).value!;
  assert.equal(retried.state, "queued");
  assert.equal(retried.attempt, 0);
  assert.equal(retried.receivedAt, now, "a fresh retry budget");
  assert.deepEqual(retried.retried, {
    round: 1,
    receivedAt: original.receivedAt,
    attemptsBefore: 2,
    told: [SORRY],
  });
  assert.deepEqual(retried.history, original.history);
  assert.equal(retried.transcript, "how many orders?", "never transcribed twice");
  assert.deepEqual(retried.echo, { since: 1, sent: true }, "nor echoed twice");
  assert.equal((await kv.get(deadLetterKey("SM1"))).value, null);
});

Deno.test("attempts - a dead letter of an earlier version, with only its reason, gets that reason as its first note", async () => {
  using kv = await Deno.openKv(":memory:");
  const old = {
    messageSid: "SM1",
    phone: "+15551234567",
    reason: "TwilioSendError: Twilio answered 400 (error 21211)",
    attempts: 1,
    failedAt: 5_000,
  };
  assert.deepEqual(historyOf(old).notes, [{
    round: 0,
    attempt: 1,
    at: 5_000,
    kind: "twilio",
    error: old.reason,
  }]);
  await kv.atomic().set(messageKey("SM1"), record({ state: "failed", attempt: 1 }))
    .set(deadLetterKey("SM1"), old).commit();
  assert.equal(await retryDeadLetter(kv, "SM1", { backend: "outbox" }), "queued");
  const retried = (await kv.get<MessageRecord>(messageKey("SM1"))).value!;
  assert.equal(retried.history?.notes[0].kind, "twilio");
  assert.deepEqual(retried.retried?.told, [], "not known to be told: a failure apologises");
});
