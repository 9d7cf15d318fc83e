// The yarn-flink web UI: reads the REST API by short polling, with relative
// URLs only, so it works the same at the AM's own address and under the RM
// web proxy's /proxy/<application id>/ prefix. Read-only: it never sends
// anything that changes state.
"use strict";

const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);

// A read-only token may arrive in the URL fragment (#token=...), as
// `yarn-flink session start` prints it; it never reaches the server's logs.
(function keepToken() {
  const m = location.hash.match(/[#&?]token=([0-9a-f]+)/);
  if (m) {
    sessionStorage.setItem("yf-token", m[1]);
    history.replaceState(null, "", location.pathname + location.search + "#/");
  }
})();

async function fetchOk(path) {
  const headers = {};
  const token = sessionStorage.getItem("yf-token");
  if (token) headers.Authorization = "Bearer " + token;
  const r = await fetch(path, { headers, cache: "no-store" });
  if (!r.ok) throw new Error(path + ": " + r.status + " " + (await r.text()).slice(0, 200));
  return r;
}
const get = async (path) => (await fetchOk(path)).json();
const text = async (path) => (await fetchOk(path)).text();

// A log the AM serves itself ("/taskmanagers/<id>/log") needs the token, so
// the TaskManager page shows it; any other is the cluster manager's own page.
const logLink = (t) => !t.log ? "—" : t.log.startsWith("/")
  ? `<a class="log" href="#/taskmanagers/${esc(t.id)}">log</a>`
  : `<a class="log" href="${esc(t.log)}">log</a>`;

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const state = (s) => `<span class="state state-${esc(s)}">${esc(s)}</span>`;
// One formatter: toLocaleString makes a new one per call, which a job of
// 1,000 subtasks pays thousands of times a second.
const numberFormat = new Intl.NumberFormat("en-US");
const num = (n) => (n == null ? "—" : numberFormat.format(n));
function bytes(n) {
  if (n == null) return "—";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
function duration(ms) {
  if (ms == null || ms < 0) return "—";
  const s = ms / 1000;
  return s < 60 ? s.toFixed(s < 10 ? 2 : 1) + " s" : Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
}
const time = (ms) => (ms > 0 ? new Date(ms).toLocaleTimeString() : "—");
function mem(r) {
  return (r.taskHeapMemory || 0) + (r.taskOffHeapMemory || 0) + (r.managedMemory || 0) + (r.networkMemory || 0);
}
const shape = (r) => `${r.cpuCores} cpu, ${mem(r)} MB`;

function taskManagersTable(tms) {
  if (!tms.length) return `<p class="muted">No TaskManager: idle ones are released, new ones start for new jobs.</p>`;
  return `<table id="taskmanagers"><tr><th>TaskManager</th><th>Shape</th><th class="num">Slots</th><th class="num">Used</th><th>Container</th><th>Log</th></tr>` +
    tms.map((t) => `<tr><td><a href="#/taskmanagers/${esc(t.id)}">${esc(t.id)}</a></td><td>${shape(t.totalResource)}</td>
      <td class="num">${t.slotsNumber}</td><td class="num">${t.allocatedSlots}</td><td>${esc(t.container || "—")}</td>
      <td>${logLink(t)}</td></tr>`).join("") + `</table>`;
}

function jobsTable(jobs) {
  if (!jobs.length) return `<p class="muted">No job yet.</p>`;
  return `<table id="jobs"><tr><th>Job</th><th>Name</th><th>State</th><th class="num">Duration</th><th class="num">Restarts</th><th>Cause</th></tr>` +
    jobs.map((j) => `<tr><td><a href="#/jobs/${esc(j.jid)}">${esc(j.jid.slice(0, 8))}</a></td><td>${esc(j.name)}</td>
      <td>${state(j.state)}</td><td class="num">${duration(j.duration)}</td><td class="num">${j.restarts ?? 0}</td>
      <td class="muted">${esc(j.error || "")}</td></tr>`).join("") + `</table>`;
}

async function overviewPage() {
  const [o, jobs, tms] = await Promise.all([get("overview"), get("jobs/overview"), get("taskmanagers")]);
  const pending = (tms.pendingWorkers || []).reduce((n, p) => n + p.slots * p.count, 0);
  const used = o["slots-total"] - o["slots-available"];
  $("summary").textContent = `${o.taskmanagers} TaskManagers · ${used} of ${o["slots-total"]} slots used · ${pending} pending`;
  return `<div class="cards">
      <div class="card"><b id="tm-count">${o.taskmanagers}</b>TaskManagers</div>
      <div class="card"><b>${used}</b>slots used</div>
      <div class="card"><b>${o["slots-available"]}</b>slots free</div>
      <div class="card"><b>${pending}</b>slots pending</div>
      <div class="card"><b>${o["jobs-running"]}</b>jobs running</div></div>
    <h2>Jobs</h2>${jobsTable(jobs.jobs || [])}
    <h2>TaskManagers</h2>${taskManagersTable(tms.taskmanagers || [])}`;
}

function vertexBox(v) {
  const total = v.parallelism || 1;
  const segs = Object.entries(v.tasks || {}).filter(([, n]) => n > 0)
    .map(([s, n]) => `<span class="b-${esc(s)}" style="width:${(100 * n) / total}%" title="${n} ${esc(s)}"></span>`).join("");
  const counts = Object.entries(v.tasks || {}).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(", ");
  return `<div class="vertex" data-vertex="${esc(v.name)}"><div class="name">${esc(v.name)}</div>
    <div class="muted">×${v.parallelism} · <span class="counts">${esc(counts)}</span></div><div class="bar">${segs}</div></div>`;
}

async function jobPage(id) {
  const j = await get("jobs/" + encodeURIComponent(id));
  $("summary").textContent = `${j.name} · ${j.state}`;
  const graph = (j.vertices || []).map(vertexBox).join(`<span class="arrow">→</span>`);
  const rows = (j.vertices || []).flatMap((v) => (v.subtasks || []).map((t) => {
    const m = t.metrics || {};
    return `<tr><td>${esc(v.name)}</td><td class="num">${t.subtask}</td><td class="num">${t.attempt}</td><td>${state(t.status)}</td>
      <td>${esc(t.host || "—")}</td><td>${t["taskmanager-id"] ? `<a href="#/taskmanagers/${esc(t["taskmanager-id"])}">${esc(t["taskmanager-id"])}</a>` : "—"}</td>
      <td class="num">${num(m["read-records"])}</td><td class="num">${bytes(m["read-bytes"])}</td>
      <td class="num">${num(m["write-records"])}</td><td class="num">${bytes(m["write-bytes"])}</td>
      <td class="num">${m["backpressured-ms-per-second"] == null ? "—" : m["backpressured-ms-per-second"] + " ms/s"}</td></tr>`;
  })).join("");
  const history = (j["restart-history"] || []).map((r) => `<tr><td>${time(r.time)}</td><td>${esc(r.cause)}</td></tr>`).join("");
  return `<h2>${esc(j.name)} <span class="muted">${esc(j.jid)}</span></h2>
    <div class="cards"><div class="card"><b>${state(j.state)}</b>state</div><div class="card"><b>${duration(j.duration)}</b>duration</div>
      <div class="card"><b>${j.restarts}</b>restarts</div><div class="card"><b>${time(j["start-time"])}</b>started</div></div>
    ${j.error ? `<h2>Cause</h2><div class="error">${esc(j.error)}</div>` : ""}
    <h2>Vertices</h2><div class="graph" id="graph">${graph}</div>
    <h2>Subtasks</h2><table id="subtasks"><tr><th>Vertex</th><th class="num">Subtask</th><th class="num">Attempt</th><th>State</th><th>Host</th>
      <th>TaskManager</th><th class="num">Records in</th><th class="num">Bytes in</th><th class="num">Records out</th><th class="num">Bytes out</th>
      <th class="num">Back-pressured</th></tr>${rows}</table>
    <h2>Restarts</h2>${history ? `<table><tr><th>When</th><th>Cause</th></tr>${history}</table>` : `<p class="muted">None.</p>`}`;
}

async function taskManagerPage(id) {
  const tms = await get("taskmanagers");
  const t = (tms.taskmanagers || []).find((x) => x.id === id);
  if (!t) return `<p class="muted">TaskManager ${esc(id)} is not registered (released when idle, or lost).</p>`;
  $("summary").textContent = `TaskManager ${id}`;
  const log = t.log && t.log.startsWith("/")
    ? `<pre id="log">${esc((await text(t.log.replace(/^\//, ""))).slice(-20000))}</pre>`
    : (t.log ? `<p><a class="log" href="${esc(t.log)}">${esc(t.log)}</a></p>` : `<p class="muted">No log here.</p>`);
  return `<h2>TaskManager ${esc(t.id)}</h2><table>
    <tr><th>Shape</th><td>${shape(t.totalResource)}, ${t.slotsNumber} slots (${t.allocatedSlots} used)</td></tr>
    <tr><th>Free</th><td>${shape(t.freeResource)}</td></tr>
    <tr><th>Why it exists</th><td>${esc(t.why || "not started by this ResourceManager")}</td></tr>
    <tr><th>Container</th><td>${esc(t.container || "—")}</td></tr>
    <tr><th>Address</th><td>${esc(t.path)} (data ${esc(t.dataAddress)})</td></tr>
    </table><h2>Log <span class="muted">(last 20,000 characters)</span></h2>${log}`;
}

async function render() {
  const h = location.hash.replace(/^#/, "") || "/";
  let m;
  try {
    let html;
    if ((m = h.match(/^\/jobs\/([^/]+)$/))) html = await jobPage(decodeURIComponent(m[1]));
    else if ((m = h.match(/^\/taskmanagers\/([^/]+)$/))) html = await taskManagerPage(decodeURIComponent(m[1]));
    else html = await overviewPage();
    $("main").innerHTML = html;
    $("status").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.ready = "1";
  } catch (e) {
    $("status").textContent = "cannot read the cluster: " + e.message;
  }
}

window.addEventListener("hashchange", render);
render();
setInterval(render, POLL_MS);
