// ivh-mock dashboard: reads only the control API (/__mock__/) and the public result URLs; no build step.
"use strict";

const token = new URLSearchParams(location.search).get("token");
const REFRESH_MS = 1000;  // at least this long between refreshes,
const REFRESH_SHARE = 4;  // and four times as long as the last took: a large store's dashboard takes a fifth of a worker
let scenarios = [];
let clock = null;

async function call(route, method = "GET", body) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers["X-Mock-Token"] = token;
  const response = await fetch(`/__mock__/${route}`, { method, headers, body: body && JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((data.error && data.error.message) || `${method} ${route}: ${response.status}`);
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  return node;
}

const when = (seconds) => (seconds == null ? "—" : new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19));
const ms = (value) => (value ? `${(value / 1000).toFixed(2)} s` : "—");
const statusCell = (status) => el("span", { class: `status status-${status}` }, status);

function bar(status, progress) {
  const width = status === "SUCCESS" ? 100 : Math.max(progress, 0);
  return el("span", { class: `bar ${status}`, title: `${progress}%` }, el("span", { style: `width:${width}%` }));
}

function showError(error) {
  const box = document.getElementById("error");
  box.hidden = !error;
  box.textContent = error ? String(error.message || error) : "";
}

async function act(promise) {
  try { await promise; showError(null); await refresh(); } catch (error) { showError(error); }
}

function span(seconds) {  // 21065 -> "5 h 51 min"
  if (seconds < 120) return `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `${hours} h ${minutes % 60} min` : `${Math.floor(hours / 24)} days ${hours % 24} h`;
}

// -- header: the clock and its controls -----------------------------------------------------------------------
function renderClock() {
  document.getElementById("clock-now").textContent = `${when(clock.now)} UTC`;
  const away = `${span(Math.abs(clock.offset))} ${clock.offset > 0 ? "ahead" : "behind"}`;
  const state = clock.frozen ? "frozen" : clock.real ? "real time" : away;
  // a run steering the clock (the contract suite) holds it: a move from here would be refused
  document.getElementById("clock-state").textContent = clock.held ? `${state}, held by ${clock.held.by}` : state;
  document.getElementById("freeze-button").textContent = clock.frozen ? "Unfreeze" : "Freeze";
}

document.getElementById("advance-button").addEventListener("click", () =>
  act(call("clock", "POST", { advance: Number(document.getElementById("advance-seconds").value) })));
document.getElementById("set-button").addEventListener("click", () => {
  const value = document.getElementById("set-time").value;
  if (value) act(call("clock", "POST", { set: Date.parse(`${value}Z`) / 1000 }));
});
document.getElementById("freeze-button").addEventListener("click", () =>
  act(call("clock", "POST", { frozen: !clock.frozen })));
document.getElementById("real-time-button").addEventListener("click", () =>
  act(call("clock", "POST", { real: true, frozen: false })));
document.getElementById("reset-all-button").addEventListener("click", () => {
  if (confirm("Forget every task, request and callback of every account?")) act(call("reset", "POST", {}));
});

// -- overview: accounts, their tasks, the request journal -------------------------------------------------------
const ACCOUNTS_SHOWN = 50; // the poll stays small however many appkeys the mock has seen
const TASKS_SHOWN = 200;  // the newest tasks of all accounts together
async function renderOverview(view) {
  const [accounts, tasks, journal] = await Promise.all([
    call(`accounts?limit=${ACCOUNTS_SHOWN}`), call(`tasks?limit=${TASKS_SHOWN}`), call("requests?limit=100")]);
  // a Map, not an object: an appkey is the caller's to choose, and `constructor` or `__proto__` name an object's own
  const byAccount = new Map();
  for (const task of tasks.tasks) {
    if (!byAccount.has(task.appkey)) byAccount.set(task.appkey, []);
    byAccount.get(task.appkey).push(task);
  }
  const accountCards = accounts.accounts.map((account) => accountCard(account, byAccount.get(account.appkey) || []));
  view.replaceChildren(
    el("section", { class: "card", id: "accounts" }, el("h2", {}, "Accounts"),
       accountCards.length ? accountCards : el("p", { class: "muted" }, "No requests yet: submit a task to the API."),
       accounts.total > accountCards.length
         ? el("p", { class: "muted" }, `The ${accountCards.length} most recently active of ${accounts.total} accounts.`)
         : ""),
    journalCard(journal.requests),
  );
}

function accountCard(account, tasks) {
  const select = el("select", { class: "scenario-select", "aria-label": `scenario of ${account.appkey}`,
    onchange: (event) => act(call(`accounts/${encodeURIComponent(account.appkey)}`, "PUT",
                                  { scenario: event.target.value })) },
    scenarios.map((name) => el("option", name === account.scenario ? { value: name, selected: "" } : { value: name },
                               name)));
  if (!scenarios.includes(account.scenario)) select.prepend(el("option", { value: account.scenario, selected: "" },
                                                                 account.scenario));
  const counts = Object.entries(account.tasks).map(([state, n]) => `${state} ${n}`).join(" · ");
  const balance = account.balance_left_seconds == null ? "no hourly package"
    : `${(account.balance_left_seconds / 3600).toFixed(2)} h left`;
  return el("div", { class: "account", dataset: { appkey: account.appkey } },
    el("div", { class: "account-head" }, el("h3", {}, account.appkey),
       el("span", { class: "muted" }, `${account.slots} slots · ${balance} · ${counts}`),
       el("label", {}, "scenario ", select),
       el("button", { class: "danger", onclick: () => act(call("reset", "POST", { appkey: account.appkey })) },
          "Reset account")),
    tasks.length ? taskTable(tasks) : "",
    tasksNote(tasks.length, Object.values(account.tasks).reduce((sum, count) => sum + count, 0)));
}

function tasksNote(shownCount, total) {
  if (!total) return el("p", { class: "muted" }, "No tasks.");
  if (shownCount >= total) return "";
  const newest = `the ${TASKS_SHOWN} newest of all accounts`;
  return el("p", { class: "muted tasks-note" }, shownCount
    ? `The ${shownCount} newest of its ${total} tasks, among ${newest}.`
    : `Its ${total} task${total === 1 ? " is" : "s are"} older than ${newest}, which are listed here.`);
}

function taskTable(tasks) {
  const rows = tasks.slice().reverse().map((task) => el("tr", { class: "task-row", dataset: { taskId: task.task_id } },
    el("td", {}, el("a", { href: `#/task/${task.task_id}` }, el("code", {}, task.task_id))),
    el("td", {}, statusCell(task.status)),
    el("td", {}, bar(task.status, task.progress), ` ${task.progress}%`),
    el("td", { class: "queue" }, task.status === "COMMIT" ? `${task.array_count} ahead` : ""),
    el("td", {}, task.driver_type), el("td", {}, ms(task.duration_ms)), el("td", {}, task.scenario),
    el("td", {}, when(task.submitted_at))));
  return el("table", {}, el("thead", {}, el("tr", {}, ["task", "status", "progress", "queue", "driver", "duration",
                                                       "scenario", "submitted"].map((h) => el("th", {}, h)))),
            el("tbody", {}, rows));
}

function journalCard(entries) {
  const rows = entries.slice().reverse().map((entry) => el("tr", { class: `journal-row verdict-${entry.verdict}` },
    el("td", {}, when(entry.at)), el("td", {}, entry.appkey), el("td", {}, entry.operation),
    el("td", { class: "verdict" }, entry.verdict), el("td", { class: "code" }, String(entry.code)),
    el("td", { class: "message" }, el("bdi", {}, entry.message || (entry.task_id ? `TaskId ${entry.task_id}` : "")),
       entry.note ? el("span", { class: "muted note" }, " · ", el("bdi", {}, entry.note)) : "")));
  return el("section", { class: "card", id: "journal" }, el("h2", {}, "Requests"),
    rows.length ? el("table", {}, el("thead", {}, el("tr", {}, ["time", "appkey", "operation", "verdict", "code",
                                                                "message"].map((h) => el("th", {}, h)))),
                     el("tbody", {}, rows))
      : el("p", { class: "muted" }, "No requests yet."));
}

// -- one task: request, timeline, video, subtitles, callbacks --------------------------------------------------
const shown = { taskId: null, mediaUrl: null, subtitlesUrl: null };

async function renderTask(view, taskId) {
  let task;
  try {
    task = await call(`tasks/${encodeURIComponent(taskId)}`);
  } catch (error) {  // reset, or never there: the page of the task shown before must not stay
    shown.taskId = null;
    view.replaceChildren(el("section", { class: "card" }, el("h2", {}, "Task ", el("code", {}, taskId)),
      el("p", { class: "muted task-gone" }, String(error.message || error), " · ",
         el("a", { href: "#/" }, "all tasks"))));
    throw error;
  }
  const progress = task.progress;
  if (shown.taskId !== taskId) {
    shown.taskId = taskId; shown.mediaUrl = null; shown.subtitlesUrl = null;
    view.replaceChildren(
      el("section", { class: "card" }, el("h2", {}, "Task ", el("code", {}, taskId)), el("div", { id: "task-summary" })),
      el("div", { class: "grid2" },
        el("section", { class: "card" }, el("h2", {}, "Result"), el("div", { id: "task-media" },
          el("p", { class: "muted" }, "The video appears here when the task succeeds."))),
        el("section", { class: "card" }, el("h2", {}, "Timeline"), el("div", { id: "task-timeline" }))),
      el("div", { class: "grid2" },
        el("section", { class: "card" }, el("h2", {}, "Request as sent"), el("pre", { id: "task-request" },
          JSON.stringify(task.request, null, 2))),
        el("section", { class: "card" }, el("h2", {}, "Callback delivery"), el("div", { id: "task-callbacks" }))),
      el("section", { class: "card" }, el("h2", {}, "Uploads to the caller's storage"),
        el("div", { id: "task-uploads" })));
  }
  document.getElementById("task-summary").replaceChildren(
    statusCell(progress.Status), " ", bar(progress.Status, progress.Progress), ` ${progress.Progress}%`,
    progress.Status === "COMMIT" ? ` · ${progress.ArrayCount} ahead in the queue` : "",
    // the caller's words each in a <bdi>: a right-to-left override in an appkey had turned the rest of the line round
    " · ", el("bdi", {}, task.appkey), ` · ${task.driver_type} · scenario `, el("bdi", {}, task.scenario),
    progress.FailCode ? el("p", { class: "status-FAIL" }, `FailCode ${progress.FailCode}: ${progress.FailMessage}`) : "");
  document.getElementById("task-timeline").replaceChildren(el("table", {}, el("tbody", {},
    task.timeline.map((step) => el("tr", {}, el("td", {}, statusCell(step.Status)), el("td", {}, when(step.At)))))));
  if (progress.MediaUrl && progress.MediaUrl !== shown.mediaUrl) {
    shown.mediaUrl = progress.MediaUrl;
    const video = el("video", { id: "task-video", src: progress.MediaUrl, controls: "", preload: "auto" });
    const media = document.getElementById("task-media");
    media.replaceChildren(video, el("p", {}, el("a", { href: progress.MediaUrl }, "download MP4"),
      ` · ${ms(progress.Duration)}`));
    if (progress.SubtitlesUrl) await showSubtitles(media, video, progress.SubtitlesUrl);
  }
  const deliveries = task.callbacks;
  document.getElementById("task-callbacks").replaceChildren(deliveries.length
    ? el("table", {}, el("tbody", {}, deliveries.map((attempt) => [
        el("tr", {}, el("th", {}, "target"), el("td", {}, el("code", {}, attempt.url))),
        el("tr", {}, el("th", {}, "answer"), el("td", { class: "callback-status" },
          attempt.status != null ? `HTTP ${attempt.status}` : attempt.error)),
        el("tr", {}, el("th", {}, "latency"), el("td", {}, `${attempt.latency_ms} ms at ${when(attempt.at)}`)),
        el("tr", {}, el("th", {}, "sent"), el("td", {}, el("pre", {}, JSON.stringify(attempt.body, null, 2)))),
        el("tr", {}, el("th", {}, "reply"), el("td", {}, el("pre", {}, attempt.response_body || "—")))])))
    : el("p", { class: "muted" }, task.request.CallbackUrl ? "Not sent yet: it goes out once, when the task finishes."
                                                          : "No CallbackUrl in the request."));
  renderUploads(task.uploads);
}

function renderUploads(uploads) {
  const box = document.getElementById("task-uploads");
  if (!uploads) {
    box.replaceChildren(el("p", { class: "muted" }, "No VideoStorageS3Url or SubtitleStorageS3Url to upload to."));
    return;
  }
  const answer = (file) => uploads.state === "pending" ? "waiting for the render to finish, then uploaded once"
    : file.status != null ? `HTTP ${file.status}` : file.error;
  box.replaceChildren(el("p", { class: `upload-state upload-${uploads.state}` }, uploads.state),
    el("table", {}, el("tbody", {}, uploads.files.map((file) => [
      el("tr", {}, el("th", {}, file.field), el("td", {}, el("code", {}, file.url))),
      el("tr", {}, el("th", {}, "answer"), el("td", { class: "upload-status" }, answer(file),
        file.bytes != null ? ` · ${file.bytes} bytes ${file.content_type} in ${file.latency_ms} ms` : "")),
      file.reply ? el("tr", {}, el("th", {}, "reply"), el("td", {}, el("pre", {}, file.reply))) : ""]))),
    uploads.fail_message ? el("p", { class: "status-FAIL" }, uploads.fail_message) : "");
}

async function showSubtitles(media, video, url) {
  const srt = await (await fetch(url)).text();
  // Browsers play WebVTT, not SRT: the same cues with '.' before the milliseconds.
  const vtt = "WEBVTT\n\n" + srt.replace(/(\d\d:\d\d:\d\d),(\d\d\d)/g, "$1.$2");
  video.append(el("track", { kind: "subtitles", label: "subtitles", default: "",
                             src: URL.createObjectURL(new Blob([vtt], { type: "text/vtt" })) }));
  media.append(el("h3", {}, "Subtitles (SRT)"), el("pre", { id: "task-subtitles" }, srt));
}

// -- routing and the live refresh ------------------------------------------------------------------------------
// One refresh at a time: one asked for while another runs (a click, a change of page) follows it, once.
let refreshing = null;
let refreshAgain = false;

async function refresh() {
  if (refreshing) { refreshAgain = true; return refreshing; }
  refreshing = (async () => {
    do { refreshAgain = false; await redraw(); } while (refreshAgain);
  })();
  try { await refreshing; } finally { refreshing = null; }
}

async function poll() {
  const began = performance.now();
  await refresh();
  setTimeout(poll, Math.max(REFRESH_MS, REFRESH_SHARE * (performance.now() - began)));
}

async function redraw() {
  const focused = document.activeElement;
  if (focused && focused.tagName === "SELECT") return;  // do not redraw a menu the user has open
  try {
    clock = await call("clock");
    renderClock();
    const view = document.getElementById("view");
    const match = location.hash.match(/^#\/task\/([^/]+)$/);
    if (match) await renderTask(view, decodeURIComponent(match[1]));
    else { shown.taskId = null; await renderOverview(view); }
    document.body.dataset.refreshed = String(Date.now());
  } catch (error) { showError(error); }
}

window.addEventListener("hashchange", refresh);
(async () => {
  try { scenarios = Object.keys((await call("scenarios")).scenarios); } catch (error) { showError(error); }
  await poll();
})();
