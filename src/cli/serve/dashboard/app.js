// The dashboard of `doctype-migrate serve`: plain DOM, no framework, no
// CDN. The token lives in this tab's sessionStorage and goes out only in
// the Authorization header (events are read with fetch streaming, since
// EventSource cannot send headers).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("dm-token"), me: null, plan: null, lastBatch: null };

async function api(method, path, body) {
  const opts = { method, headers: { Authorization: "Bearer " + state.token } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  const data = await resp.json().catch(() => null);
  if (!resp.ok) {
    const err = new Error((data && data.error && data.error.message) || resp.statusText);
    err.code = data && data.error && data.error.code;
    err.status = resp.status;
    throw err;
  }
  return data;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c === null || c === undefined ? "" : c);
  return e;
}

const can = {
  operate: () => state.me && (state.me.role === "operator" || state.me.role === "admin"),
  approve: () => state.me && (state.me.role === "approver" || state.me.role === "admin"),
};

async function signIn(token) {
  state.token = token;
  try {
    state.me = await api("GET", "/api/whoami");
  } catch (e) {
    state.token = null;
    $("sign-in-error").textContent = "Sign-in failed: " + e.message;
    return;
  }
  sessionStorage.setItem("dm-token", token);
  $("sign-in-section").hidden = true;
  $("app").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = state.me.name;
  $("who-role").textContent = state.me.role;
  $("make-plan").hidden = !can.operate();
  $("rollback").hidden = !can.operate();
  await Promise.all([refreshStatus(), refreshPlans(), refreshHistory()]);
  listen();
}

function signOut() {
  sessionStorage.removeItem("dm-token");
  location.reload();
}

async function refreshStatus() {
  const s = await api("GET", "/api/migration/status");
  const status = $("status");
  status.className = "";
  if (s.state === "running") {
    status.textContent = "Running " + s.running.id;
    status.classList.add("running");
    showRun(s.running);
  } else if (s.state === "pending") {
    status.textContent = s.pending.doctypes + " DocType(s) pending";
    status.classList.add("pending");
  } else {
    status.textContent = "Up to date";
    status.classList.add("ok");
  }
}

async function refreshPlans() {
  const plans = await api("GET", "/api/migration/plans");
  const list = $("plans");
  list.replaceChildren();
  for (const p of plans) {
    const a = el("a", { href: "#" + p.id, "data-plan": p.id }, p.id);
    a.addEventListener("click", (ev) => { ev.preventDefault(); openPlan(p.id); });
    const note = p.approved_by ? "approved by " + p.approved_by : (p.needs_approval ? "needs approval" : "no approval needed");
    list.append(el("li", {}, a, " by " + p.created_by + ", " + countChanges(p) + " change(s), " + note));
  }
}

function countChanges(p) {
  return p.doctypes.reduce((n, d) => n + d.changes.length, 0);
}

function changeClass(kind) {
  if (kind.startsWith("add") || kind.startsWith("create")) return "add";
  if (kind.startsWith("drop") || kind.startsWith("remove")) return "remove";
  return "modify";
}

function changeText(c) {
  const parts = [c.kind, c.column || c.index || ""];
  if (c.from != null && c.to != null) parts.push(c.from + " -> " + c.to);
  else if (c.to != null) parts.push(c.to);
  return parts.filter(Boolean).join(" ");
}

async function openPlan(id) {
  const p = await api("GET", "/api/migration/plans/" + encodeURIComponent(id));
  state.plan = p;
  $("plan").hidden = false;
  $("plan-title").textContent = "Plan " + p.id;
  $("plan-meta").textContent = "Made by " + p.created_by + " at " + p.created_at +
    (p.approved_by ? "; approved by " + p.approved_by : p.needs_approval ? "; needs approval" : "") +
    (p.blocked ? "; findings need approval (the API's --allow-data-loss)" : "");
  $("plan-error").textContent = "";
  $("approve").hidden = !(can.approve() && !p.approved_by);
  $("apply").hidden = !(can.operate() && (!p.needs_approval || p.approved_by) && p.approved_by !== state.me.name);
  const body = $("plan-body");
  body.replaceChildren();
  for (const d of p.doctypes) {
    const box = el("div", { class: "doctype" }, el("h4", {}, d.doctype + " (" + d.table + ")"));
    for (const c of d.changes) {
      const sign = { add: "+ ", remove: "- ", modify: "~ " }[changeClass(c.kind)];
      box.append(el("p", { class: "change " + changeClass(c.kind) }, sign + changeText(c)));
    }
    for (const f of d.findings || []) {
      box.append(el("p", { class: "finding" + (f.blocking ? " blocking" : "") },
        f.rule + " (" + f.severity + (f.blocking ? ", blocking" : "") + "): " + f.message));
    }
    box.append(el("pre", {}, d.forward_sql.join(";\n") + ";"));
    body.append(box);
  }
}

async function makePlan() {
  try {
    const p = await api("POST", "/api/migration/plans");
    await refreshPlans();
    await openPlan(p.id);
  } catch (e) {
    $("plan-error").textContent = e.message;
  }
}

async function approve() {
  try {
    await api("POST", "/api/migration/plans/" + encodeURIComponent(state.plan.id) + "/approve");
    await openPlan(state.plan.id);
    await refreshPlans();
  } catch (e) {
    $("plan-error").textContent = e.message;
  }
}

async function applyPlan() {
  try {
    const r = await api("POST", "/api/migration/plans/" + encodeURIComponent(state.plan.id) + "/apply");
    $("apply").hidden = true;
    showRun({ id: r.run_id, percent: 0, state: "running" });
  } catch (e) {
    $("plan-error").textContent = e.message + (e.code ? " (" + e.code + ")" : "");
  }
}

function showRun(run) {
  $("run-section").hidden = false;
  $("run-id").textContent = run.id;
  $("run-progress").value = run.percent || 0;
  const what = run.state === "running"
    ? (run.phase || "starting") + (run.doctype ? " " + run.doctype : "") +
      (run.rows_total ? ", " + run.rows_copied + "/" + run.rows_total + " rows" : "")
    : run.state + (run.error ? ": " + run.error.message : "");
  $("run-text").textContent = Math.round(run.percent || 0) + " % - " + what;
}

async function refreshHistory() {
  const params = new URLSearchParams();
  const dt = $("filter-doctype").value.trim();
  if (dt) params.set("doctype", dt);
  const limit = $("filter-limit").value;
  if (limit) params.set("limit", limit);
  const rows = await api("GET", "/api/migration/history?" + params);
  const tbody = $("history").querySelector("tbody");
  tbody.replaceChildren();
  for (const r of rows.slice().reverse()) {
    tbody.append(el("tr", {},
      el("td", {}, String(r.id)), el("td", {}, r.doctype), el("td", {}, r.status),
      el("td", {}, (r.changes || []).map(changeText).join("; ")),
      el("td", {}, r.applied_by), el("td", {}, r.timestamp), el("td", {}, r.batch_id || "")));
  }
  const completed = rows.filter((r) => r.status === "completed" && r.batch_id);
  state.lastBatch = completed.length ? completed[completed.length - 1].batch_id : null;
  $("rollback").disabled = !state.lastBatch;
}

async function rollback() {
  $("rollback-confirm").hidden = true;
  try {
    const r = await api("POST", "/api/migration/rollback", { batch: state.lastBatch });
    $("rollback-result").textContent = "Rolled back " + r.rolled_back.length + " migration(s) of batch " + state.lastBatch;
  } catch (e) {
    $("rollback-result").textContent = "Roll back refused: " + e.message;
  }
  await Promise.all([refreshStatus(), refreshHistory()]);
}

// The run events, read with fetch streaming (the token goes in a header).
async function listen() {
  for (;;) {
    try {
      const resp = await fetch("/api/migration/events", { headers: { Authorization: "Bearer " + state.token } });
      if (!resp.ok) return;
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.startsWith("data: ")) onEvent(JSON.parse(line.slice(6)));
        }
      }
    } catch (e) {
      // Connection lost: wait, then listen again.
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function onEvent(msg) {
  if (msg.type !== "progress") return;
  showRun(msg.state);
  if (msg.state.state !== "running") {
    refreshStatus();
    refreshHistory();
    refreshPlans();
  } else {
    $("status").textContent = "Running " + msg.state.id;
    $("status").className = "running";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in").addEventListener("submit", (ev) => { ev.preventDefault(); signIn($("token").value.trim()); });
  $("sign-out").addEventListener("click", signOut);
  $("make-plan").addEventListener("click", makePlan);
  $("approve").addEventListener("click", approve);
  $("apply").addEventListener("click", applyPlan);
  $("history-filter").addEventListener("submit", (ev) => { ev.preventDefault(); refreshHistory(); });
  $("rollback").addEventListener("click", () => { $("rollback-confirm").hidden = false; $("rollback-confirm").focus(); });
  $("rollback-confirm").addEventListener("click", rollback);
  if (state.token) signIn(state.token);
});
