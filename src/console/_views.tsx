/**
 * The operator console's pages, rendered on the server with Hono's JSX
 * (which escapes every value). Plain HTML forms: nothing needs JavaScript.
 *
 * @module
 */
import type { Child, FC } from "hono/jsx";
import type { DeadLetterRow, Overview, RecentJobs } from "./_data.ts";
import {
  type AttemptHistory,
  FAILURE_LABELS,
  HISTORY_FIRST,
  type JobBackend,
  METRICS,
  type RetryOutcome,
} from "../jobs/mod.ts";
import { OUTSIDE_WINDOW, type UrlHint } from "../webhook/mod.ts";

const STYLE = `
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}
header a{color:#cfe3ff}header strong{margin-right:auto}
main{max-width:64rem;margin:1.2rem auto;padding:0 1.2rem}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:.4rem 1rem 1rem;margin-bottom:1rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eceff3}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:.9em}
.notice{background:#e8f5e9;border:1px solid #a5d6a7;padding:.6rem 1rem;border-radius:6px}
.error{background:#fdecea;border:1px solid #f5a39b;padding:.6rem 1rem;border-radius:6px}
button{font:inherit;padding:.25rem .8rem;cursor:pointer}
header button{background:none;border:1px solid #8a96a8;color:#fff}
input[type=password],input:not([type]),input[type=email],textarea{font:inherit;padding:.3rem;width:100%;box-sizing:border-box}
.muted{color:#5d6878;font-size:.9em}
td{overflow-wrap:anywhere;vertical-align:top}
ol.history{margin:0;padding-left:1.2rem}ol.history li{margin-bottom:.2rem}
p.plan{margin:0 0 .4rem}td.when{white-space:nowrap}
tr.letter td{border-bottom:0;padding-top:.7rem}tr.story td{font-size:.92em}
@media (max-width:40rem){
main{padding:0 .6rem}section{padding:.4rem .6rem .8rem}
table.cards tr:first-child{display:none}
table.cards tr{display:block;border-bottom:1px solid #dde1e7;padding:.4rem 0}
table.cards tr.letter{border-bottom:0;padding-bottom:0}
table.cards td{display:grid;grid-template-columns:7.5rem minmax(0,1fr);gap:.5rem;border:0;padding:.1rem 0;text-align:left}
table.cards td::before{content:attr(data-label);color:#5d6878;font-size:.9em}
}`;

/** Every page's frame; `csrf` present = signed in (navigation and sign-out). */
export const Layout: FC<{ title: string; csrf?: string; children?: Child }> = (props) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      {/* The site-wide no-referrer policy would make the browser send Origin: null on our own forms. */}
      <meta name="referrer" content="same-origin" />
      <title>{props.title} · Bridge console</title>
      <style>{STYLE}</style>
    </head>
    <body>
      <header>
        <strong>WhatsApp ↔ AYD bridge</strong>
        {props.csrf !== undefined && (
          <>
            <a href="/admin">Overview</a>
            <a href="/admin/console/jobs">Recent jobs</a>
            <a href="/admin/console/dead-letters">Dead letters</a>
            <a href="/admin/console/people">People</a>
            <a href="/admin/sessions.csv">ayd_sessions.csv</a>
            <form method="post" action="/admin/logout">
              <input type="hidden" name="csrf" value={props.csrf} />
              <button type="submit">Sign out</button>
            </form>
          </>
        )}
      </header>
      <main>
        <h1>{props.title}</h1>
        {props.children}
      </main>
    </body>
  </html>
);

/**
 * The sign-in form; `problem` says why the last attempt failed.
 *
 * @example
 * ```tsx
 * c.html(<LoginPage problem="wrong" />, 401);
 * ```
 */
export const LoginPage: FC<{ problem?: "wrong" | "locked"; retryAfter?: number }> = (p) => (
  <Layout title="Sign in">
    {p.problem === "wrong" && <p class="error" role="alert">That is not the admin token.</p>}
    {p.problem === "locked" && (
      <p class="error" role="alert">
        Too many failed attempts from your address. Try again in{" "}
        {Math.ceil((p.retryAfter ?? 0) / 60)} minute(s).
      </p>
    )}
    <section>
      <form method="post" action="/admin/login">
        <p>
          <label for="token">
            Admin token (<code>ADMIN_TOKEN</code>)
          </label>
          <input id="token" type="password" name="token" required autocomplete="off" />
        </p>
        <button type="submit">Sign in</button>
      </form>
    </section>
  </Layout>
);

/**
 * Health, the admin API's statistics and the AYD sessions.
 *
 * @example
 * ```tsx
 * c.html(<OverviewPage csrf={session.csrf} backend="kv-queue" overview={overview} />);
 * ```
 */
export const OverviewPage: FC<{
  csrf: string;
  backend: JobBackend;
  overview: Overview;
  /** Why KV cannot be written right now, if it cannot. */
  storageTrouble?: string;
  /** Signature mismatches explained: the URL Twilio signed, per route. */
  urlHints?: UrlHint[];
  aydMode: "session" | "chat";
  /** Why AYD refuses the bridge's credentials, if it does. */
  aydProblem?: string;
}> = (p) => {
  const status = p.storageTrouble
    ? `degraded: writes fail (${p.storageTrouble})`
    : p.aydProblem
    ? `degraded: ${p.aydProblem}`
    : "ok";
  if (!p.overview.ok) {
    return (
      <Layout title="Overview" csrf={p.csrf}>
        <p class="error" role="alert">Unavailable: the KV store did not answer in time.</p>
        <section id="health">
          <h2>Health</h2>
          <table>
            <Row name="Status" value={status} />
            <Row name="Job backend" value={p.backend} />
          </table>
        </section>
      </Layout>
    );
  }
  const { stats } = p.overview;
  const failures = Object.entries(stats.deliveryFailuresByErrorCode).sort(([a], [b]) =>
    Number(a) - Number(b)
  );
  return (
    <Layout title="Overview" csrf={p.csrf}>
      {(p.urlHints ?? []).map((hint) => <UrlHintNotice key={hint.route} hint={hint} />)}
      <section id="health">
        <h2>Health</h2>
        <table>
          <Row name="Status" value={status} />
          <Row name="Job backend" value={p.backend} />
          <Row name="Pending jobs" value={counted(stats.pendingJobs)} />
          <Row name="Dead letters" value={counted(stats.deadLetters)} />
        </table>
      </section>
      <section id="messages">
        <h2>Messages</h2>
        <table>
          <tr>
            <th></th>
            <th class="n">last hour</th>
            <th class="n">last day</th>
          </tr>
          {METRICS.map((metric) => (
            <tr>
              <td>{metric.replace("_", " ")}</td>
              <td class="n">{stats.lastHour[metric]}</td>
              <td class="n">{stats.lastDay[metric]}</td>
            </tr>
          ))}
        </table>
        <p>
          Answer time (last day): p50 {ms(stats.answerTimeMs.p50)}, p95{" "}
          {ms(stats.answerTimeMs.p95)}, over {stats.answerTimeMs.samples} answers.
        </p>
      </section>
      <section id="sessions">
        <h2>AYD</h2>
        {p.aydMode === "chat"
          ? (
            <p>
              Chat mode (AYD's documented API): <span id="chat-count">{counted(stats.chats)}</span>
              {" "}
              numbers have a chat.
            </p>
          )
          : (
            <p>
              Session mode (the Flask app's widget sessions):{" "}
              <span id="session-count">{counted(stats.sessions)}</span> numbers have a session.{" "}
              <a href="/admin/sessions.csv">Download ayd_sessions.csv</a>
            </p>
          )}
        <p>
          <span id="people-count">{counted(stats.people)}</span> people in the directory.{" "}
          <a href="/admin/console/people">Manage people</a>
        </p>
      </section>
      <section id="delivery-failures">
        <h2>Delivery failures by error code (last day)</h2>
        {failures.length === 0 ? <p>None.</p> : (
          <table>
            <tr>
              <th>Twilio error code</th>
              <th class="n">messages</th>
            </tr>
            {failures.map(([code, n]) => (
              <tr>
                <td>
                  <code>{code === "0" ? "none given" : code}</code>
                  {Number(code) === OUTSIDE_WINDOW && " (outside WhatsApp's 24-hour window)"}
                </td>
                <td class="n">{n}</td>
              </tr>
            ))}
          </table>
        )}
      </section>
    </Layout>
  );
};

/** A signature mismatch explained: which URL Twilio signed and what to set. */
const UrlHintNotice: FC<{ hint: UrlHint }> = ({ hint }) => (
  <p class="error" role="alert" id={`url-hint-${hint.route}`}>
    Twilio signed {hint.route === "webhook" ? "webhooks" : "status callbacks"} for{" "}
    <code>{hint.signedFor}</code>, but <code>{hint.variable}</code> is{" "}
    <code>{hint.configured}</code>, so they are refused (403). Set{" "}
    <code>
      {hint.variable}={hint.signedFor}
    </code>{" "}
    and restart. Last seen {time(hint.seenAt)} UTC; this goes away once a{" "}
    {hint.route === "webhook" ? "webhook" : "status callback"} passes.
  </p>
);

/**
 * The newest jobs with their outcome; numbers masked, no message text.
 *
 * @example
 * ```tsx
 * c.html(<JobsPage csrf={session.csrf} recent={await recentJobs(kv, 50)} />);
 * ```
 */
export const JobsPage: FC<{ csrf: string; recent: RecentJobs }> = ({ csrf, recent }) => (
  <Layout title="Recent jobs" csrf={csrf}>
    <p class="muted">
      The newest {recent.jobs.length} of {recent.scanned} messages kept (7 days)
      {!recent.complete && `; only the first ${recent.scanned} records were read`}. Message text is
      never shown.
    </p>
    <section>
      {recent.jobs.length === 0 ? <p>No messages yet.</p> : (
        <table id="jobs" class="cards">
          <tr>
            <th>received (UTC)</th>
            <th>MessageSid</th>
            <th>from</th>
            <th>state</th>
            <th>outcome</th>
            <th class="n">attempts</th>
            <th class="n">parts sent</th>
            <th>last error</th>
          </tr>
          {recent.jobs.map((job) => (
            <tr>
              <td data-label="received">{time(job.receivedAt)}</td>
              <td data-label="MessageSid">
                <code>{job.messageSid}</code>
              </td>
              <td data-label="from">{job.from}</td>
              <td data-label="state">{stateOf(job)}</td>
              <td data-label="outcome">{job.outcome ?? "—"}</td>
              <td data-label="attempts" class="n">{job.attempts}</td>
              <td data-label="parts sent" class="n">
                {job.parts === undefined ? "—" : `${job.sentParts ?? 0}/${job.parts}`}
              </td>
              <td data-label="last error">{job.lastError ?? ""}</td>
            </tr>
          ))}
        </table>
      )}
    </section>
  </Layout>
);

const NOTICES: Record<RetryOutcome, string> = {
  queued: "is back in line and is tried again now; if it fails again, it comes back to this list " +
    "with the new attempts in its history.",
  not_found: "is no longer a dead letter (retried already?).",
  message_expired: "has expired (messages are kept 7 days) and cannot be retried.",
  changed: "changed while it was being retried; look again.",
};

/**
 * The dead letters, each with a retry button; `notice` reports a retry.
 *
 * @example
 * ```tsx
 * c.html(<DeadLettersPage csrf={session.csrf} letters={await deadLetterRows(kv)} />);
 * ```
 */
export const DeadLettersPage: FC<{
  csrf: string;
  letters: DeadLetterRow[];
  notice?: { outcome: RetryOutcome; messageSid: string };
}> = ({ csrf, letters, notice }) => (
  <Layout title="Dead letters" csrf={csrf}>
    {notice && (
      <p class={notice.outcome === "queued" ? "notice" : "error"} role="status">
        <code>{notice.messageSid}</code> {NOTICES[notice.outcome]}
      </p>
    )}
    <section>
      {letters.length === 0
        ? <p id="no-dead-letters">No dead letters.</p>
        : (
          <table id="dead-letters" class="cards">
            <tr>
              <th>failed (UTC)</th>
              <th>MessageSid</th>
              <th>from</th>
              <th>first cause</th>
              <th class="n">attempts</th>
            </tr>
            {letters.map((letter) => (
              <>
                <tr class="letter">
                  <td data-label="failed" class="when">{time(letter.failedAt)}</td>
                  <td data-label="MessageSid">
                    <code>{letter.messageSid}</code>
                  </td>
                  <td data-label="from">{letter.from}</td>
                  <td data-label="first cause" class="cause">{letter.reason}</td>
                  <td data-label="attempts" class="n">{letter.attempts}</td>
                </tr>
                <tr class="story">
                  <td data-label="history" colspan={3}>
                    <History history={letter.history} />
                  </td>
                  <td data-label="retry" colspan={2}>
                    <p class="plan">{letter.retryPlan}</p>
                    {letter.retryable && (
                      <form
                        method="post"
                        action={`/admin/console/dead-letters/${
                          encodeURIComponent(letter.messageSid)
                        }/retry`}
                      >
                        <input type="hidden" name="csrf" value={csrf} />
                        <button type="submit" aria-label={`Retry ${letter.messageSid}`}>
                          Retry
                        </button>
                      </form>
                    )}
                  </td>
                </tr>
              </>
            ))}
          </table>
        )}
    </section>
  </Layout>
);

/** A dead letter's failed attempts, first cause first, and where some were not kept. */
const History: FC<{ history: AttemptHistory }> = ({ history }) => (
  <ol class="history">
    {history.notes.map((note, i) => (
      <>
        {i === HISTORY_FIRST && history.omitted > 0 && (
          <li class="omitted">
            … {history.omitted} more attempt{history.omitted === 1 ? "" : "s"} not kept …
          </li>
        )}
        <li>
          {note.round > 0 && `retry ${note.round}, `}attempt {note.attempt}, {time(note.at)}:{" "}
          <strong>{FAILURE_LABELS[note.kind]}</strong> {note.error}
          {note.quiet && " (the user was not messaged again)"}
        </li>
      </>
    ))}
  </ol>
);

/**
 * What a console page answers when KV does not answer in time: even whether
 * the browser is signed in cannot be read, so nothing else is shown.
 *
 * @example
 * ```tsx
 * c.html(<UnavailablePage />, 503);
 * ```
 */
export const UnavailablePage: FC = () => (
  <Layout title="Unavailable">
    <p class="error" role="alert">
      Unavailable: the KV store did not answer in time, so this page cannot be shown.{" "}
      <code>/health</code> says why; try again in a moment.
    </p>
  </Layout>
);

/**
 * A short page for refusals and errors.
 *
 * @example
 * ```tsx
 * c.html(<MessagePage title="Forbidden" text="The form was not sent from this console." />, 403);
 * ```
 */
export const MessagePage: FC<{ title: string; text: string }> = ({ title, text }) => (
  <Layout title={title}>
    <p class="error" role="alert">{text}</p>
    <p>
      <a href="/admin">Back to the console</a>
    </p>
  </Layout>
);

const Row: FC<{ name: string; value: string | number }> = ({ name, value }) => (
  <tr>
    <th>{name}</th>
    <td class="n">{value}</td>
  </tr>
);

/**
 * A job's state as an operator reads it: a message that was never asked
 * (over a rate limit, or from a number not allowed) is stored as answered,
 * since its notice went out, but it got no answer.
 */
const stateOf = (job: RecentJobs["jobs"][number]) =>
  job.outcome === "rate_limited"
    ? "not asked (rate limited)"
    : job.outcome === "denied"
    ? "not asked (not allowed)"
    : job.state;

/** Counts stop at 10,000 to stay cheap; say so instead of pretending. */
const counted = (n: number) => n >= 10_000 ? "10,000 or more" : String(n);
const ms = (value: number | null) => value === null ? "—" : `${value} ms`;
const time = (at: number) => new Date(at).toISOString().replace("T", " ").slice(0, 19);
