/**
 * The sandbox chat page: one HTML document with its style and a little
 * vanilla script, no build step. It posts what is typed to `/sandbox/send`,
 * a voice note (recorded with the microphone where the browser allows it,
 * or an audio file) to `/sandbox/voice`, and shows the chat from
 * `/sandbox/events` (Server-Sent Events), rendered as WhatsApp renders it.
 *
 * @module
 */
import { DEMO_TOPICS } from "./demo_answers.ts";
import { renderWhatsApp } from "./whatsapp_markup.ts";

/** The test numbers offered in the page's picker. */
export const TEST_NUMBERS = ["+15550100001", "+15550100002", "+15550100003"];

/**
 * The test number a page's query asks for (`?phone=+15550100002`), else
 * `fallback`. A `+` typed into a URL's query means a space to
 * `URLSearchParams`, so a number that arrives as " 15550100002" gets its
 * plus back. Runs in the page too (as its source text), so it uses nothing
 * from around it.
 *
 * @example
 * ```ts
 * phoneFromQuery("?phone=+15550100002", "+15550100001"); // "+15550100002"
 * ```
 */
export function phoneFromQuery(search: string, fallback: string): string {
  const given = (new URLSearchParams(search).get("phone") ?? "").trim().replace(/^(?=\d)/, "+");
  return /^\+[1-9]\d{6,14}$/.test(given) ? given : fallback;
}

/**
 * The page. `demo` adds buttons for the demo AYD's topics.
 *
 * @example
 * ```ts
 * app.get("/sandbox", (c) => c.html(sandboxPage({ demo: true })));
 * ```
 */
export function sandboxPage(options: { demo: boolean }): string {
  const chips = [...(options.demo ? DEMO_TOPICS : []), "help", "reset"]
    .map((topic) => `<button type="button" class="chip">${topic}</button>`).join("");
  const numbers = TEST_NUMBERS.map((n) => `<option>${n}</option>`).join("");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>WhatsApp sandbox · AskYourDatabase bridge</title>
<style>${STYLE}</style>
</head>
<body>
<main class="phone">
  <header>
    <div class="avatar" aria-hidden="true">AYD</div>
    <div class="who">
      <div class="name">AskYourDatabase</div>
      <div id="presence" class="presence">sandbox: nothing leaves this machine</div>
    </div>
    <label class="number">You are
      <select id="number" aria-label="Test number">${numbers}</select>
    </label>
  </header>
  <section id="chat" class="chat" aria-live="polite"></section>
  <div class="chips">${chips}</div>
  <form id="composer">
    <label class="attach" title="Send an audio file as a voice note">${CLIP_ICON}<input id="audio-file" type="file" accept="audio/*" hidden></label>
    <input id="text" autocomplete="off" placeholder="Type a message" aria-label="Message">
    <button id="mic" type="button" aria-label="Record a voice note" title="Record a voice note">${MIC_ICON}</button>
    <button id="send" type="submit" aria-label="Send">➤</button>
  </form>
</main>
<script>
${renderWhatsApp.toString()}
${phoneFromQuery.toString()}
${SCRIPT}
</script>
</body>
</html>`;
}

const STYLE = `
*{box-sizing:border-box}
body{margin:0;background:#d1d7db;font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111b21}
.phone{max-width:560px;height:100vh;margin:0 auto;display:flex;flex-direction:column;background:#efeae2}
header{display:flex;align-items:center;gap:10px;padding:10px 14px;background:#008069;color:#fff}
.avatar{width:40px;height:40px;border-radius:50%;background:#fff;color:#008069;display:grid;place-items:center;font-weight:700;font-size:13px}
.who{flex:1;min-width:0}.name{font-weight:600}.presence{font-size:12px;opacity:.85}
.number{font-size:12px;display:flex;flex-direction:column;gap:2px}
.number select{font:inherit;font-size:13px;border:0;border-radius:4px;padding:2px 4px}
.chat{flex:1;overflow-y:auto;padding:12px 5%;display:flex;flex-direction:column;gap:4px}
.msg{max-width:85%;padding:6px 8px 4px;border-radius:8px;box-shadow:0 1px .5px rgba(11,20,26,.13);white-space:pre-wrap;overflow-wrap:anywhere}
.mine{align-self:flex-end;background:#d9fdd3}.theirs{align-self:flex-start;background:#fff}
.msg pre{margin:2px 0;padding:6px;background:rgba(0,0,0,.05);border-radius:4px;font:13px/1.35 ui-monospace,Menlo,Consolas,monospace;white-space:pre;overflow-x:auto}
.msg code{font:13px ui-monospace,Menlo,Consolas,monospace;background:rgba(0,0,0,.05);padding:0 3px;border-radius:3px}
.msg img{display:block;max-width:100%;border-radius:6px}
.quote{display:block;border-left:3px solid #06cf9c;padding-left:6px;color:#54656f}
.meta{font-size:11px;color:#667781;text-align:right;margin-top:2px;white-space:nowrap}
.ticks{margin-left:4px}.ticks.read{color:#53bdeb}.ticks.failed{color:#d00}
.typing{color:#667781;font-style:italic}
.note{align-self:center;background:#ffeecd;font-size:12px;padding:4px 8px;border-radius:6px}
.chips{display:flex;flex-wrap:wrap;gap:6px;padding:6px 10px;background:#f0f2f5}
.chip{font:inherit;font-size:13px;border:1px solid #c9d1d6;background:#fff;border-radius:14px;padding:3px 10px;cursor:pointer}
form{display:flex;gap:8px;padding:8px 10px;background:#f0f2f5}
#text{flex:1;font:inherit;border:0;border-radius:8px;padding:9px 12px}
#send,#mic{border:0;border-radius:50%;width:40px;background:#008069;color:#fff;font-size:16px;cursor:pointer}
#mic.recording{background:#d00;animation:pulse 1s infinite}#mic:disabled{background:#8696a0;cursor:not-allowed}
@keyframes pulse{50%{opacity:.6}}
.attach{display:grid;place-items:center;width:32px;color:#54656f;cursor:pointer}
#mic svg{display:block;margin:auto}
.voice{display:flex;align-items:center;gap:8px;min-width:220px}
.voice .play{border:0;background:none;font-size:18px;color:#54656f;cursor:pointer;width:24px;padding:0}
.voice .wave{flex:1;display:flex;align-items:center;gap:2px;height:24px}
.voice .wave i{display:block;width:3px;border-radius:2px;background:#8fb79a}
.voice .duration{font-size:12px;color:#667781;min-width:30px}
.voice .badge{color:#53bdeb;display:flex}
`;

/** Icons drawn inline, so they show whatever emoji font the machine has (or lacks). */
const MIC_ICON = '<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">' +
  '<path fill="currentColor" d="M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 ' +
  '0 1-10 0H5a7 7 0 0 0 6 6.92V21h2v-3.08A7 7 0 0 0 19 11h-2z"/></svg>';
const CLIP_ICON = '<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">' +
  '<path fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" ' +
  'd="M21 11.5l-8.6 8.6a5 5 0 0 1-7.1-7.1l8.6-8.6a3.5 3.5 0 0 1 5 5l-8.6 8.6a2 2 0 0 1-2.8-2.8l7.9-7.9"/>' +
  "</svg>";

/** The page's behaviour; `renderWhatsApp` and `phoneFromQuery` are defined just before it. */
const SCRIPT = `
const MIC_ICON = ${JSON.stringify(MIC_ICON)};
const phone = phoneFromQuery(location.search, "${TEST_NUMBERS[0]}");
const picker = document.getElementById("number");
if (![...picker.options].some((o) => o.value === phone)) picker.add(new Option(phone), 0);
picker.value = phone;
picker.onchange = () => { location.search = "?phone=" + encodeURIComponent(picker.value); };
document.title = phone + " · " + document.title;

const chat = document.getElementById("chat");
const presence = document.getElementById("presence");
const bubbles = new Map();
let lastSeq = 0, typingTimer, typingBubble;

const time = (at) => new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const TICKS = { sending: "🕓", delivered: "✓✓", read: "✓✓", failed: "!" };
// Reports may cross (the typing indicator can mark a message read before the
// webhook's answer says it was delivered): a status never steps back.
const RANK = { sending: 0, queued: 0, sent: 1, delivered: 2, read: 3 };

function note(text) {
  const div = document.createElement("div");
  div.className = "note";
  div.textContent = text;
  chat.append(div);
  chat.scrollTop = chat.scrollHeight;
}

function stopTyping() {
  clearTimeout(typingTimer);
  typingBubble?.remove();
  typingBubble = undefined;
  presence.textContent = "online";
}

function setStatus(id, status) {
  const bubble = bubbles.get(id);
  const word = status.split(" ")[0];
  const before = (bubble?.dataset.status || "").split(" ")[0];
  if (!bubble || (RANK[word] ?? 9) < (RANK[before] ?? -1)) return;
  bubble.dataset.status = status;
  const ticks = bubble.querySelector(".ticks");
  ticks.textContent = TICKS[word] || "✓";
  ticks.className = "ticks " + word;
  ticks.title = status;
}

const clock = (ms) => Math.floor(ms / 60000) + ":" + String(Math.floor(ms / 1000) % 60).padStart(2, "0");

/** A WhatsApp voice bubble: play button, a waveform drawn from the id, the duration. */
function voiceNote(voice, id) {
  const box = document.createElement("div");
  box.className = "voice";
  const play = document.createElement("button");
  play.type = "button";
  play.className = "play";
  play.textContent = "▶";
  play.setAttribute("aria-label", "Play voice note");
  const wave = document.createElement("div");
  wave.className = "wave";
  let seed = [...id].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);
  for (let i = 0; i < 28; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const bar = document.createElement("i");
    bar.style.height = (4 + (seed % 19)) + "px";
    wave.append(bar);
  }
  const duration = document.createElement("span");
  duration.className = "duration";
  duration.textContent = voice.durationMs ? clock(voice.durationMs) : "";
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.innerHTML = MIC_ICON;
  const audio = new Audio(voice.src);
  audio.preload = "metadata";
  audio.onloadedmetadata = () => {
    if (!voice.durationMs && Number.isFinite(audio.duration)) duration.textContent = clock(audio.duration * 1000);
  };
  audio.onended = audio.onpause = () => { play.textContent = "▶"; };
  audio.onplay = () => { play.textContent = "❚❚"; };
  play.onclick = () => (audio.paused ? audio.play().catch((e) => note("Cannot play: " + e.message)) : audio.pause());
  box.append(play, wave, duration, badge);
  return box;
}

function bubble(event, mine) {
  const div = document.createElement("div");
  div.className = "msg " + (mine ? "mine" : "theirs");
  div.dataset.id = event.id;
  const text = document.createElement("div");
  text.className = "text";
  if (mine && event.voice) text.append(voiceNote(event.voice, event.id));
  else if (mine) text.textContent = event.text;
  else text.innerHTML = event.body ? renderWhatsApp(event.body) : "";
  for (const url of event.mediaUrls || []) {
    if (!/^https?:/.test(url)) continue;
    const img = document.createElement("img");
    img.alt = "chart";
    // The chart is taller once it has loaded: stay at the bottom if the chat was there.
    img.onload = () => {
      const below = chat.scrollHeight - chat.scrollTop - chat.clientHeight;
      if (below <= img.offsetHeight + 48) chat.scrollTop = chat.scrollHeight;
    };
    img.src = url;
    text.append(img);
  }
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = time(event.at);
  const ticks = document.createElement("span");
  ticks.className = "ticks";
  meta.append(ticks);
  div.append(text, meta);
  bubbles.set(event.id, div);
  (typingBubble && !mine ? typingBubble.before(div) : chat.append(div));
  setStatus(event.id, event.status);
  chat.scrollTop = chat.scrollHeight;
}

function apply(event) {
  if (event.seq <= lastSeq) return;
  lastSeq = event.seq;
  if (event.kind === "inbound") bubble(event, true);
  else if (event.kind === "reply") { stopTyping(); bubble(event, false); }
  else if (event.kind === "status") setStatus(event.id, event.status);
  else if (event.kind === "typing") {
    stopTyping();
    presence.textContent = "typing…";
    typingBubble = document.createElement("div");
    typingBubble.className = "msg theirs typing";
    typingBubble.textContent = "typing…";
    chat.append(typingBubble);
    chat.scrollTop = chat.scrollHeight;
    // WhatsApp shows it for at most 25 seconds.
    typingTimer = setTimeout(stopTyping, 25000);
  }
}

const events = new EventSource("/sandbox/events?phone=" + encodeURIComponent(phone));
events.onmessage = (message) => apply(JSON.parse(message.data));
events.onopen = () => { document.body.dataset.connected = "true"; };

async function send(text) {
  if (!text.trim()) return;
  try {
    const response = await fetch("/sandbox/send", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ phone, text }),
    });
    if (!response.ok) note("Not sent: " + (await response.text()));
  } catch (error) {
    note("Not sent: the sandbox is not reachable (" + error.message + ")");
  }
}

const input = document.getElementById("text");
document.getElementById("composer").onsubmit = (e) => {
  e.preventDefault();
  send(input.value);
  input.value = "";
  input.focus();
};
for (const chip of document.querySelectorAll(".chip")) chip.onclick = () => send(chip.textContent);
input.focus();

async function sendVoice(blob, durationMs) {
  const type = (blob.type || "audio/ogg").split(";")[0];
  const query = "phone=" + encodeURIComponent(phone) + (durationMs ? "&durationMs=" + Math.round(durationMs) : "");
  try {
    const response = await fetch("/sandbox/voice?" + query, {
      method: "POST",
      headers: { "content-type": type },
      body: blob,
    });
    if (!response.ok) note("Not sent: " + (await response.text()));
  } catch (error) {
    note("Not sent: the sandbox is not reachable (" + error.message + ")");
  }
}

const audioPicker = document.getElementById("audio-file");
audioPicker.onchange = () => {
  const file = audioPicker.files[0];
  audioPicker.value = "";
  if (file) sendVoice(file);
};

// Recording needs a secure context (https or localhost) and MediaRecorder.
const mic = document.getElementById("mic");
const RECORDING_TYPES = ["audio/ogg;codecs=opus", "audio/webm;codecs=opus", "audio/webm", "audio/mp4"];
let recording;
if (!navigator.mediaDevices?.getUserMedia || !window.MediaRecorder) {
  mic.disabled = true;
  mic.title = "This browser cannot record here (it needs https or localhost): send an audio file with the paper clip";
}
mic.onclick = async () => {
  if (recording) return recording.stop();
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    return note("No microphone (" + error.message + "): send an audio file with the paper clip instead");
  }
  const mimeType = RECORDING_TYPES.find((type) => MediaRecorder.isTypeSupported(type));
  const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : {});
  const chunks = [];
  const started = performance.now();
  const placeholder = input.placeholder;
  const timer = setInterval(() => { input.placeholder = "Recording… " + clock(performance.now() - started); }, 250);
  recorder.ondataavailable = (e) => { if (e.data.size > 0) chunks.push(e.data); };
  recorder.onstop = () => {
    clearInterval(timer);
    input.placeholder = placeholder;
    mic.classList.remove("recording");
    mic.innerHTML = MIC_ICON;
    mic.setAttribute("aria-label", "Record a voice note");
    delete document.body.dataset.recording;
    for (const track of stream.getTracks()) track.stop();
    recording = undefined;
    const blob = new Blob(chunks, { type: recorder.mimeType || mimeType || "audio/ogg" });
    if (blob.size > 0) sendVoice(blob, performance.now() - started);
  };
  recorder.start(250);
  recording = recorder;
  mic.classList.add("recording");
  mic.textContent = "■";
  mic.setAttribute("aria-label", "Stop and send the voice note");
  document.body.dataset.recording = "true";
};
`;
