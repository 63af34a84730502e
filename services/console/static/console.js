// dnsctl console: draws what the server streams (server-sent events from /api/stream); no
// framework, no build step. Every text from the stack is set with textContent, never as HTML.
"use strict";

const TOKEN_KEY = "dnsctl-console-token";
const RECENT_EVENTS = 6;
const live = {
  state: null,
  timeline: null,
  race: null,
  lastEvents: {},      // lane -> [event]
  lastFlip: {},        // endpoint -> event
  backoff: {},         // "enactor|endpoint" -> {until, attempt}
  flips: [],           // every flip shown: {endpoint, plan_version, ts, shown_at} (benchmarks read it)
  served: [],          // every change of the plan an endpoint serves (Route 53 view) as drawn: {endpoint, plan_version, shown_at}
  lastServed: {},      // endpoint -> the plan version its card last showed
  trace: null,
  traceAt: 0,
};
window.dnsctlConsole = live;

// -- small DOM helpers ----------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const SVGNS = "http://www.w3.org/2000/svg";
function s(tag, attrs, text) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}
const $ = (id) => document.getElementById(id);
const short = (id) => (id && id.length > 14 ? id.slice(0, 12) + "…" : id || "—");

// Endpoints often share their first label ("dynamodb.us-east-1.amazonaws.com", "dynamodb.us-east-1.api.aws"):
// a compact name keeps the first label and adds trailing labels until no other endpoint reads the same.
function nickname(name, all) {
  const labels = (n) => n.replace(/\.$/, "").split(".");
  const cut = (n, k) => { const l = labels(n); return k === 0 ? l[0] : k >= l.length - 1 ? l.join(".") : `${l[0]}…${l.slice(-k).join(".")}`; };
  for (let k = 0; k < labels(name).length; k += k === 0 ? 2 : 1) { // a domain's last two labels go together
    const mine = cut(name, k);
    if (!all.some((o) => o !== name && cut(o, k) === mine)) return mine;
  }
  return name;
}
const nick = (name) => nickname(name, ((live.state && live.state.endpoints) || []).map((e) => e.endpoint));
const clock = (ts) => (ts ? new Date(ts).toISOString().slice(11, 23) : "");
const plural = (n, w) => `${n} ${w}${n === 1 ? "" : w.endsWith("s") ? "es" : "s"}`;

// -- the token ---------------------------------------------------------------------------------

function token() { return sessionStorage.getItem(TOKEN_KEY); }
function showTokenState(text, ok) {
  const el = $("token-state");
  el.textContent = text;
  el.className = ok ? "ok" : "";
}
async function checkToken() {
  if (!token()) { showTokenState("read-only (no token)", false); return; }
  const r = await fetch("/api/token", { headers: { Authorization: `Bearer ${token()}` } });
  showTokenState(r.ok ? "token accepted: controls enabled" : "token refused (401): read-only", r.ok);
}
$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = $("token").value.trim();
  if (v) sessionStorage.setItem(TOKEN_KEY, v);
  $("token").value = "";
  checkToken();
});
$("token-forget").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); checkToken(); });

// -- calls behind the buttons -----------------------------------------------------------------

async function call(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  return { ok: r.ok, status: r.status, data };
}
function showResult(what, res) {
  const el = $("action-result");
  el.replaceChildren();
  el.className = "result" + (res.ok ? "" : " refused");
  const detail = res.data && res.data.detail ? res.data.detail : "";
  const head = res.ok ? `${what}: done` : `${what}: refused (${res.status})${detail ? " — " + detail : ""}`;
  el.append(h("p", { text: head, "data-status": res.status }));
  if (res.ok && res.data) el.append(h("pre", { text: JSON.stringify(res.data, null, 1).slice(0, 4000) }));
}
async function act(what, method, path, body) {
  const res = await call(method, path, body);
  showResult(what, res);
  return res;
}
function confirmStep(title, bodyText) {
  return new Promise((resolve) => {
    $("confirm-title").textContent = title;
    $("confirm-body").textContent = bodyText;
    $("confirm").hidden = false;
    $("confirm-yes").focus();
    const done = (yes) => { $("confirm").hidden = true; $("confirm-yes").onclick = null; $("confirm-no").onclick = null; resolve(yes); };
    $("confirm-yes").onclick = () => done(true);
    $("confirm-no").onclick = () => done(false);
  });
}

$("race-run").addEventListener("click", () => act("race", "POST", "/api/race"));
$("chaos-clear-all").addEventListener("click", () => act("clear chaos", "DELETE", "/api/chaos"));
$("chaos-apply").addEventListener("click", () => {
  const e = $("chaos-enactor").value;
  act(`chaos ${e}`, "POST", `/api/chaos/${encodeURIComponent(e)}`, {
    lock_failures: Number($("chaos-lock").value || 0), delay_before_flip_s: Number($("chaos-delay").value || 0),
  });
});
$("chaos-pause").addEventListener("click", () => act("pause", "POST", `/api/chaos/${encodeURIComponent($("chaos-enactor").value)}/pause`));
$("chaos-resume").addEventListener("click", () => act("resume", "POST", `/api/chaos/${encodeURIComponent($("chaos-enactor").value)}/resume`));
$("chaos-clear").addEventListener("click", () => act("clear", "DELETE", `/api/chaos/${encodeURIComponent($("chaos-enactor").value)}`));
$("freeze").addEventListener("click", () => act("freeze", "POST", "/api/freeze", { reason: $("freeze-reason").value || "console" }));
$("thaw").addEventListener("click", () => act("thaw", "POST", "/api/thaw"));

async function drain(undrain) {
  const az = $("drain-az").value;
  const verb = undrain ? "undrain" : "drain";
  const path = `/api/azs/${encodeURIComponent(az)}/${verb}`;
  const preview = await call("POST", path + "?dry_run=true");
  if (!preview.ok) { showResult(`${verb} ${az} (preview)`, preview); return; }
  const text = preview.data.preview_available
    ? JSON.stringify(preview.data.result, null, 1)
    : preview.data.note;
  if (!(await confirmStep(`${verb} ${az}?`, text))) { showResult(`${verb} ${az}`, { ok: true, status: 0, data: { cancelled: true } }); return; }
  const res = await act(`${verb} ${az}`, "POST", path);
  if (!res.ok && res.status === 409 && res.data && res.data.upstream) {
    // The planner's safety check refused it: show its verdict and offer to force.
    if (await confirmStep(`The planner refused: ${res.data.detail}`, JSON.stringify(res.data.upstream, null, 1) + "\n\nForce it anyway?")) {
      await act(`${verb} ${az} (forced)`, "POST", path + "?force=true");
    }
  }
}
$("drain").addEventListener("click", () => drain(false));
$("undrain").addEventListener("click", () => drain(true));

$("repair").addEventListener("click", async () => {
  const body = { endpoint: $("repair-endpoint").value, break_lock: $("repair-break-lock").checked, dry_run: true };
  const preview = await call("POST", "/api/repair", body);
  if (!preview.ok) { showResult(`repair ${body.endpoint} (preview)`, preview); return; }
  const p = preview.data;
  const lines = [`${p.rebuild ? "rebuild and point at" : "point at"} tree ${p.tree_id} of plan ${p.plan_version}: ${p.why}`, `lock: ${p.lock}${p.breaks_lock ? " (will be broken)" : ""}`];
  for (const b of p.batches) lines.push(`batch ${b.purpose}: ${b.changes.length} changes`, ...b.changes.slice(0, 12).map((c) => "  " + c));
  if (await confirmStep(`Repair ${body.endpoint}?`, lines.join("\n"))) await act(`repair ${body.endpoint}`, "POST", "/api/repair", { ...body, dry_run: false });
});

// -- endpoints -----------------------------------------------------------------------------------

function endpointBroken(ep) {
  if (ep.cell === "cellmap") return !!(ep.accounts && ep.accounts.lost > 0); // account names: judged by their answers
  const zero = Object.values(ep.addresses || {}).some((n) => n === 0);
  return (ep.dangling && ep.dangling.length > 0) || zero;
}

function treeGraph(ep) {
  const r = ep.route53 || {};
  const active = r.active_tree;
  const rollback = r.rollback_tree;
  // One square per load balancer: a bottom node holds many LBs (enactor/layout.py), so LBs are
  // keyed by id; an LB is drawn as shared when both trees reach its addresses through the same record.
  const lbs = new Map(); // lb id -> {lb, inActive, inRollback, leaf: {inActive, inRollback}}
  for (const [tree, key] of [[active, "inActive"], [rollback, "inRollback"]]) {
    for (const lb of (tree && tree.load_balancers) || []) {
      const cur = lbs.get(lb.lb_id) || { lb, inActive: false, inRollback: false, leaf: {} };
      cur[key] = true;
      cur.leaf[key] = lb.leaf;
      if (key === "inActive") cur.lb = lb;
      lbs.set(lb.lb_id, cur);
    }
  }
  const isShared = (m) => m.inActive && m.inRollback && m.leaf.inActive === m.leaf.inRollback;
  const azs = new Map();
  for (const v of lbs.values()) {
    const az = v.lb.az || "?";
    if (!azs.has(az)) azs.set(az, []);
    azs.get(az).push(v);
  }
  const azList = [...azs.keys()].sort();
  const cell = 9, perRow = 16;
  const boxH = (n) => 22 + Math.ceil(Math.max(1, n) / perRow) * (cell + 2);
  let y = 8;
  const azY = {};
  for (const az of azList) { azY[az] = y; y += boxH(azs.get(az).length) + 8; }
  const height = Math.max(y, 120);
  const svg = s("svg", { class: "tree", viewBox: `0 0 480 ${height}`, role: "img",
    "aria-label": `Route 53 tree of ${ep.endpoint}: root to ${active ? "plan " + active.plan_version : "nothing"}, ${lbs.size} load balancers` });
  const node = (x, yy, w, label, sub, colour, dashed) => {
    svg.append(s("rect", { x, y: yy, width: w, height: 34, rx: 5, fill: "#fff", stroke: colour, "stroke-width": 2, "stroke-dasharray": dashed ? "4 3" : "" }));
    svg.append(s("text", { x: x + 5, y: yy + 14 }, label));
    svg.append(s("text", { x: x + 5, y: yy + 28 }, sub));
  };
  const mid = height / 2;
  const rootOk = !(ep.dangling && ep.dangling.length);
  node(4, mid - 60, 92, "root", rootOk ? "→ plan " + (ep.active_version ?? "?") : "DANGLING", rootOk ? "#1d6b34" : "#b3141b");
  node(4, mid + 20, 92, "rollback", "→ plan " + (ep.rollback_version ?? "—"), "#4a5563", true);
  const treeBox = (tree, yy, dashed, colour) => {
    if (!tree) return null;
    const levels = (ep.tree_levels || {})[tree.tree_id];
    const sub = tree.exists ? `plan ${tree.plan_version ?? "?"}${levels ? ` · ${levels} level${levels > 1 ? "s" : ""}` : ""}${tree.complete ? "" : " (incomplete)"}` : "MISSING";
    node(116, yy, 124, short(tree.tree_id), sub, tree.exists ? colour : "#b3141b", dashed);
    return yy + 17;
  };
  svg.append(s("line", { x1: 96, y1: mid - 43, x2: 116, y2: mid - 43, stroke: rootOk ? "#1d6b34" : "#b3141b", "stroke-width": 2 }));
  svg.append(s("line", { x1: 96, y1: mid + 37, x2: 116, y2: mid + 37, stroke: "#4a5563", "stroke-dasharray": "4 3" }));
  const aY = treeBox(active, mid - 60, false, "#0b5cad");
  const rY = treeBox(rollback, mid + 20, true, "#4a5563");
  for (const az of azList) {
    const members = azs.get(az);
    const yy = azY[az];
    const hh = boxH(members.length);
    const share = members.filter((m) => m.inActive).reduce((t, m) => t + (m.lb.share || 0), 0);
    const shared = members.filter(isShared).length;
    if (aY !== null && members.some((m) => m.inActive)) svg.append(s("line", { x1: 240, y1: aY, x2: 270, y2: yy + hh / 2, stroke: "#0b5cad", "stroke-width": 1.5 }));
    if (rY !== null && members.some((m) => m.inRollback)) svg.append(s("line", { x1: 240, y1: rY, x2: 270, y2: yy + hh / 2, stroke: "#4a5563", "stroke-dasharray": "4 3" }));
    svg.append(s("rect", { x: 270, y: yy, width: 206, height: hh, rx: 4, fill: "#f4f6f9", stroke: "#8e99a8" }));
    svg.append(s("text", { x: 274, y: yy + 13 }, `${az} ${(share * 100).toFixed(0)}% · ${members.length} LB${shared ? " · " + shared + " shared" : ""}`));
    members.sort((a, b) => (a.lb.lb_id < b.lb.lb_id ? -1 : 1)).forEach((m, i) => {
      const cx = 274 + (i % perRow) * (cell + 3);
      const cy = yy + 18 + Math.floor(i / perRow) * (cell + 2);
      const fill = m.lb.missing ? "#b3141b" : m.inActive ? "#0b5cad" : "#c9d1db";
      const rect = s("rect", { x: cx, y: cy, width: cell, height: cell, fill, stroke: isShared(m) ? "#1b1f24" : "none", "stroke-width": 1.5 });
      rect.append(s("title", {}, `${m.lb.lb_id} (${m.lb.az}) weight ${m.lb.weight ?? "?"} share ${((m.lb.share || 0) * 100).toFixed(2)}% ${m.lb.addresses.join(" ")}${isShared(m) ? " · node shared by both trees" : m.inRollback && !m.inActive ? " · rollback tree only" : ""}`));
      svg.append(rect);
    });
  }
  return svg;
}

function lockText(ep) {
  const lock = ep.route53 && ep.route53.lock;
  if (!lock || !lock.holder) return h("span", { text: "free" });
  const left = lock.expires - Date.now() / 1000;
  return h("span", { class: "countdown", "data-expires": lock.expires, "data-holder": lock.holder, "data-counter": lock.counter },
    left > 0 ? `${lock.holder} · counter ${lock.counter} · ${left.toFixed(0)} s left` : `free (${lock.holder}'s lease expired)`);
}

// With cells the view is grouped by the DNS management system that owns each part: the regional
// system (and the cell map's zone of account names) in the Endpoints and Enactors sections, then one
// part per cell in the Cells section (services/prober/cell_groups.py marks every row with its cell).
const grouped = (state) => (state.cells || []).length > 0;
const regional = (row) => !row.cell || row.cell === "cellmap";

function endpointCard(ep, state, heading, planner) {
  if (live.lastServed[ep.endpoint] !== ep.active_version) {
    live.lastServed[ep.endpoint] = ep.active_version;
    live.served.push({ endpoint: ep.endpoint, plan_version: ep.active_version, shown_at: Date.now(),
      read_at: state.snapshot_at * 1000, published_at: state.published_at * 1000 });
    if (live.served.length > 1000) live.served.shift();
  }
  const broken = endpointBroken(ep);
  // The cell map with no cell yet (`dnsctl up --accounts N` alone): every account's name CNAMEs the
  // legacy regional name. Nothing is wrong, and nothing is served by a cell: neutral, and says so.
  const noCells = ep.cell === "cellmap" && !grouped(state) && !broken;
  const answers = Object.entries(ep.addresses || {}).map(([t, n]) =>
    h("span", { class: n === 0 ? "badge bad" : n === null ? "badge warn" : "badge ok", "data-type": t, "data-answers": n ?? "" },
      `${t}: ${n === null ? "no answer" : plural(n, "address")}`));
  const flip = live.lastFlip[ep.endpoint];
  const applied = ep.route53 && ep.route53.applied;
  const newest = ep.cell === "cellmap"
    ? (ep.newest_version != null ? `map ${ep.newest_version}${ep.lag != null ? ` (lag ${ep.lag})` : ""} (the cell map planner's own versions)`
      : `unknown${state.cellmap && state.cellmap.error ? " (cell map planner: " + state.cellmap.error + ")" : ""}`)
    : ep.newest_version != null ? `plan ${ep.newest_version}${ep.lag != null ? ` (lag ${ep.lag})` : ""}`
    : `unknown${planner && planner.error ? " (planner: " + planner.error + ")" : ""}`;
  const badge = broken ? h("span", { class: "badge bad", text: "BROKEN" }) : noCells ? h("span", { class: "badge neutral", text: "no cells" })
    : h("span", { class: "badge ok", text: "serving" });
  const dnsNow = ep.cell === "cellmap"
    ? (noCells ? `no cells: every account's name CNAMEs the legacy regional name · ${accountsText(ep.accounts)}` : accountsText(ep.accounts))
    : answers.length ? answers : "—";
  return h("article", { class: "card " + (broken ? "broken" : noCells ? "neutral" : "ok"), id: `ep-${ep.endpoint}`, "data-endpoint": ep.endpoint,
    "data-cell": ep.cell || "regional", "data-broken": broken ? "true" : "false", "data-active-version": ep.active_version ?? "",
    "aria-label": ep.endpoint },
    h(heading, {}, ep.endpoint, " ", badge),
    h("dl", {},
      h("dt", { text: "serves" }), h("dd", { class: "serves" }, ep.active_version != null ? `plan ${ep.active_version} (tree ${short(ep.tree)})` : (ep.dangling && ep.dangling.length ? `nothing: root → ${short(ep.dangling[0])} is missing` : "no tree")),
      h("dt", { text: "newest plan" }), h("dd", { class: "newest", "data-newest": ep.newest_version ?? "" }, newest),
      h("dt", { text: "rollback" }), h("dd", {}, ep.rollback_tree ? `plan ${ep.rollback_version ?? "?"} (tree ${short(ep.rollback_tree)})` : "none"),
      h("dt", { text: "lock" }), h("dd", {}, lockText(ep)),
      h("dt", { text: "_applied" }), h("dd", {}, applied ? `version ${applied.version} (tree ${short(applied.tree_id)})` : "none (legacy mode writes none)"),
      h("dt", { text: "DNS now" }), h("dd", { class: "answers" }, dnsNow),
      h("dt", { text: "last flip" }), h("dd", { class: "last-flip", "data-plan": flip ? flip.plan_version : "" },
        flip ? h("span", { class: "flip" }, `${flip.lane} → plan ${flip.plan_version ?? "?"} at ${clock(flip.ts)}`) : "none seen yet")),
    treeGraph(ep));
}

function accountsText(summary) {
  if (!summary) return "accounts: unknown (prober not read)";
  const unanswered = summary.unanswered || 0;  // no answer to count (services/prober/accounts.py): neither answering nor lost
  return `${plural(summary.answering + summary.lost + unanswered, "account")}: ${summary.answering} answering, ${summary.lost} lost DNS`
    + (unanswered ? `, ${unanswered} no reply` : "");
}

function accountList(summary, label) {
  if (!summary || !summary.accounts.length) return h("p", { class: "accounts none", text: summary ? "no account" : "" });
  return h("ul", { class: "accounts", "aria-label": label },
    summary.accounts.map((a) => a.answered === false
      ? h("li", { class: "unanswered", "data-account": a.account }, `${a.account}: no reply`)
      : h("li", { class: a.addresses > 0 ? "ok" : "lost", "data-account": a.account, "data-addresses": a.addresses },
        `${a.account} → ${a.target ? nick(a.target) : "no CNAME"}: ${a.addresses > 0 ? plural(a.addresses, "address") : "NO ADDRESS"}`)));
}

function renderEndpoints(state) {
  const box = $("endpoint-cards");
  box.replaceChildren();
  if (state.route53_error) box.append(h("p", { class: "state-broken", text: `Route 53 cannot be read: ${state.route53_error}` }));
  const cells = grouped(state);
  const head = $("regional-head");
  head.hidden = !cells;
  if (cells) {
    $("regional-accounts").replaceChildren(`legacy (not moved yet): ${accountsText(state.legacy_accounts)}`);
    $("regional-account-list").replaceChildren(accountList(state.legacy_accounts, "legacy accounts"));
  }
  const eps = (state.endpoints || []).filter((ep) => !cells || regional(ep));
  for (const ep of eps) box.append(endpointCard(ep, state, cells ? "h4" : "h3", state.planner));
  if (!eps.length && !state.route53_error) box.append(h("p", { text: "no endpoint zone in Route 53 yet" }));
  renderCells(state);
}

function renderCells(state) {
  const section = $("cells");
  section.hidden = !grouped(state);
  const box = $("cell-groups");
  box.replaceChildren();
  for (const c of state.cells || []) {
    const id = `h-${c.cell}`;
    const p = c.planner || {};
    const eps = (state.endpoints || []).filter((ep) => ep.cell === c.cell);
    const enactors = (state.enactors || []).filter((en) => en.cell === c.cell);
    const lost = c.accounts && c.accounts.lost > 0;
    box.append(h("section", { class: "cell" + (lost ? " broken" : ""), "data-cell": c.cell, "aria-labelledby": id },
      h("h3", { id }, c.cell, " ", lost ? h("span", { class: "badge bad", text: "ACCOUNTS LOST DNS" }) : null),
      h("p", { class: "cell-summary" },
        `planner: ${p.reachable ? `newest plan ${p.newest_version ?? "—"}${p.frozen ? ", FROZEN" : ""}` : `unreachable${p.error ? " (" + p.error + ")" : ""}`}` +
        ` · ${plural(eps.length, "endpoint")} · ${plural(enactors.length, "enactor")} · ${accountsText(c.accounts)}`),
      h("div", { class: "cards" }, eps.length ? eps.map((ep) => endpointCard(ep, state, "h4", p)) : h("p", { text: "no endpoint zone of this cell in Route 53 yet" })),
      h("div", { class: "scroll", tabindex: "0", "aria-label": `enactors of ${c.cell}` },
        h("table", { class: "enactors", "data-cell": c.cell },
          h("caption", { class: "sr", text: `State of ${c.cell}'s enactors per endpoint, and their last events` }),
          enactorHead(),
          h("tbody", {}, enactors.map(enactorRow)))),
      h("h4", { text: `accounts in ${c.cell}` }),
      accountList(c.accounts, `accounts in ${c.cell}`)));
  }
}

function tickCountdowns() {
  const now = Date.now() / 1000;
  for (const el of document.querySelectorAll(".countdown")) {
    const left = Number(el.dataset.expires) - now;
    el.textContent = left > 0 ? `${el.dataset.holder} · counter ${el.dataset.counter} · ${left.toFixed(0)} s left` : `free (${el.dataset.holder}'s lease expired)`;
  }
  for (const el of document.querySelectorAll(".backoff-left")) {
    const left = Number(el.dataset.until) - now;
    el.textContent = left > 0 ? `${left.toFixed(1)} s left` : "retrying";
  }
}
setInterval(tickCountdowns, 500);

// -- enactors, alarms --------------------------------------------------------------------------

function endpointStateCell(name, e) {
  const b = live.backoff[`${name}|${e.endpoint}`];
  let text = e.state || "?";
  if (e.state === "working" && e.plan_version != null) text = `working plan ${e.plan_version}`;
  const parts = [h("span", { class: `state-${e.state}` }, `${nick(e.endpoint)}: ${text}`)];
  if (e.state === "backing_off" && b) parts.push(" ", h("span", { class: "backoff-left", "data-until": b.until }, ""));
  if (e.state === "stuck") parts.push(` (${e.flip_failures} failed flips)`);
  parts.push(` · applied ${e.applied_version ?? "—"}`);
  return h("div", { "data-endpoint": e.endpoint, "data-state": e.state }, parts);
}

function enactorHead() {
  return h("thead", {}, h("tr", {}, ["enactor", "mode", "state", "per endpoint", "last events"].map((c) => h("th", { scope: "col", text: c }))));
}

function enactorRow(en) {
  const events = (live.lastEvents[en.enactor] || []).slice(-RECENT_EVENTS).map((e) =>
    h("div", {}, `${clock(e.ts)} ${e.event}${e.plan_version != null ? " v" + e.plan_version : ""}${e.endpoint ? " " + nick(e.endpoint) : ""}`));
  return h("tr", { "data-enactor": en.enactor, "data-cell": en.cell || "regional" },
    h("th", { scope: "row", text: en.enactor }),
    h("td", { text: en.mode || "—" }),
    h("td", { class: `state-${en.state}` }, en.reachable ? (en.state || "?") : `unreachable: ${en.error || ""}`),
    h("td", {}, (en.endpoints || []).map((e) => endpointStateCell(en.enactor, e))),
    h("td", { class: "events" }, events.length ? events : "—"));
}

function renderEnactors(state) {
  const body = $("enactor-table").querySelector("tbody");
  const cells = grouped(state);
  body.replaceChildren(...(state.enactors || []).filter((en) => !cells || regional(en)).map(enactorRow));
  const modes = new Set((state.enactors || []).map((en) => en.mode).filter(Boolean));
  $("race-mode").textContent = [...modes].join("/") || "?";
  const sel = $("chaos-enactor");
  const names = (state.enactors || []).filter((e) => e.cell !== "cellmap").map((e) => e.enactor); // the cell map's have no chaos
  if (sel.options.length !== names.length) sel.replaceChildren(...names.map((n) => h("option", { value: n, text: n })));
}

function renderAlarms(state) {
  const list = $("alarm-list");
  list.replaceChildren();
  if (state.alarms === null || state.alarms === undefined) {
    list.append(h("li", { class: "none", text: state.prober_error ? `prober unreachable: ${state.prober_error}` : "no prober" }));
    return;
  }
  if (!state.alarms.length) { list.append(h("li", { class: "none", text: "no alarm" })); return; }
  state.alarms.forEach((a, i) => {
    const subject = a.endpoint || a.enactor || (a.endpoints || []).join(", ");
    list.append(h("li", { class: i === 0 && !a.caused_by ? "cause" : "", "data-alarm": a.alarm },
      `${a.alarm}${subject ? " · " + subject : ""}${a.caused_by ? " ← caused by " + a.caused_by : i === 0 ? " (cause)" : ""}: ${a.detail || ""}`));
  });
}

function renderSelectors(state) {
  const azs = new Set();
  for (const ep of state.endpoints || []) for (const lb of ((ep.route53 || {}).active_tree || {}).load_balancers || []) if (lb.az) azs.add(lb.az);
  const azSel = $("drain-az");
  const azList = [...azs].sort();
  if (azList.length && azSel.options.length !== azList.length) azSel.replaceChildren(...azList.map((a) => h("option", { value: a, text: a })));
  const epSel = $("repair-endpoint");
  const eps = (state.endpoints || []).map((e) => e.endpoint);
  if (eps.length && epSel.options.length !== eps.length) epSel.replaceChildren(...eps.map((e) => h("option", { value: e, text: e })));
}

function renderState(state) {
  live.state = state;
  const p = state.planner || {};
  const broken = (state.endpoints || []).filter(endpointBroken).length;
  $("summary").textContent = `${(state.endpoints || []).length} endpoints${grouped(state) ? ` (${plural(state.cells.length, "cell")})` : ""} · newest plan ${p.newest_version ?? "?"}` +
    `${p.frozen ? " · FROZEN" : ""}${broken ? ` · ${broken} broken` : ""} · read ${clock(state.at * 1000)} UTC` +
    ` · console: ${state.console ? state.console.route53_requests : "?"} Route 53 requests so far` +
    `${state.console && state.console.route53_budget_per_s ? ` (at most ${state.console.route53_budget_per_s}/s)` : ""}, ` +
    `${state.console ? plural(state.console.clients, "page") : "? pages"} open`;
  renderEndpoints(state);
  renderEnactors(state);
  renderAlarms(state);
  renderSelectors(state);
}

// -- events, timeline, race ----------------------------------------------------------------------

// Messages only update `live`; the page is redrawn at most once per frame, however many arrive.
let drawPending = false;
let flipsToStamp = [];
function scheduleDraw() {
  if (drawPending) return;
  drawPending = true;
  const draw = () => {
    drawPending = false;
    if (live.state) renderState(live.state);
    // A flip counts as shown once the page that shows it is drawn (benchmarks read these).
    const shownAt = Date.now();
    for (const e of flipsToStamp) live.flips.push({ endpoint: e.endpoint, plan_version: e.plan_version, lane: e.lane, ts: e.ts, shown_at: shownAt });
    flipsToStamp = [];
  };
  if (document.visibilityState === "visible") requestAnimationFrame(draw); else setTimeout(draw, 100);
}

function onEvents(events, replayed) {
  for (const e of events) {
    (live.lastEvents[e.lane] = live.lastEvents[e.lane] || []).push(e);
    if (live.lastEvents[e.lane].length > 50) live.lastEvents[e.lane].shift();
    if (e.event === "backoff" && e.endpoint) live.backoff[`${e.lane}|${e.endpoint}`] = { until: Date.parse(e.ts) / 1000 + Number(e.max_seconds || 0) };
    if (e.event === "flipped" && e.endpoint) {
      live.lastFlip[e.endpoint] = e;
      if (!replayed) flipsToStamp.push(e);
    }
  }
  scheduleDraw();
}

const MARK_TEXT = { cause: (m) => `◆ CAUSE ${m.anomaly}`, anomaly: (m) => `▲ ${m.anomaly}`, effect: (m) => `↳ effect ${m.anomaly || ""}`, guard: () => "✔ guard", recovered: () => "✔ cleared" };

function renderTimeline(tl) {
  live.timeline = tl;
  const head = $("timeline-head");
  head.replaceChildren();
  if (!tl.anomalies.length) head.append(h("p", { class: "ok", text: `${tl.events} recent events; no anomaly: no stale flip, no deleted active tree, no dangling root` }));
  for (const a of tl.anomalies) head.append(h("p", { class: a.cause ? "cause" : "", "data-anomaly": a.id }, `${a.cause ? "◆ CAUSE" : "▲ then"} ${a.id} · ${a.ts.slice(11, 23)} · ${a.process} · ${a.title}: ${a.summary}`));
  const lanes = tl.lanes;
  const table = $("timeline-table");
  table.querySelector("thead").replaceChildren(h("tr", {}, h("th", { scope: "col", text: "time (UTC)" }), h("th", { scope: "col", text: "mark" }), lanes.map((l) => h("th", { scope: "col", text: l }))));
  const rows = tl.rows.map((row) => {
    const mark = row.mark;
    const ts = row.kind === "collapsed" ? row.first_ts : row.ts;
    const text = row.kind === "collapsed" ? row.text : `${row.event}${row.plan_version != null ? " v" + row.plan_version : ""}${row.endpoint ? " " + nick(row.endpoint) : ""}`;
    const full = row.kind === "collapsed" ? row.text : `${text}${row.endpoint ? " (" + row.endpoint + ")" : ""}`;
    // The event's cell says its lane too, so on paper (one line per event, console.css) it reads alone.
    const cells = lanes.map((l) => (l === laneOf(row) ? h("td", { class: "ev", "data-lane": l, title: full }, text) : h("td", {})));
    return h("tr", { class: mark ? `mark-${mark.role}` : "", "data-role": mark ? mark.role : "" },
      h("td", { text: (ts || "").slice(11, 23) }), h("td", { class: "mark " + (mark ? mark.role : ""), text: mark ? (MARK_TEXT[mark.role] || (() => mark.role))(mark) : "" }), cells);
  });
  table.querySelector("tbody").replaceChildren(...rows);
  const scroller = table.parentElement;
  scroller.scrollTop = scroller.scrollHeight; // appended at the bottom, as events arrive
}
function laneOf(row) {
  if (row.kind === "collapsed") return row.lane;
  // Enactors logging as a plain "enactor" process get their id's lane (lab/timeline/events.py).
  return row.process === "enactor" && row.enactor ? row.enactor : row.process;
}

function renderRace(race) {
  live.race = race;
  const v = $("race-verdict");
  v.replaceChildren();
  delete v.dataset.broken; // only a finished race's verdict says broken or held (never the previous race's)
  if (race.error) {
    v.className = "verdict broken";
    v.append(`the race could not run: ${race.error}`);
  } else if (race.verdict) { // shown at once; the checker's part follows while the race still runs it
    v.className = "verdict " + (race.verdict.broken ? "broken" : "held");
    v.dataset.broken = race.verdict.broken ? "true" : "false";
    v.append(h("p", {}, h("b", {}, `VERDICT (${race.verdict.mode}): ${race.verdict.headline}`)));
    v.append(h("ul", {}, race.verdict.checks.map((c) => h("li", {}, `${c.ok ? "✓" : "✗"} ${c.label}: ${c.detail}`))));
    v.append(checkerPart(race.checker, race.verdict.broken));
  } else if (race.running) {
    v.className = "verdict";
    v.append(`race running (${race.mode || "…"})…`);
  }
  $("race-moments").replaceChildren(...(race.moments || []).map((m) => h("li", { class: m.kind || "" }, `${m.t.toFixed(2)} s · ${m.who} · ${m.text}`)));
}

// The model checker's side of a race (services/console/actions.py): its shortest October race,
// saved beside the stack, one click from the trace viewer below (/#trace=NAME).
function checkerPart(checker, broken) {
  const what = broken ? "Why it can happen: " : "The interleaving the guard refuses: ";
  const box = h("div", { class: "checker", "data-checker": checker ? (checker.running ? "running" : checker.trace_url ? "trace" : "none") : "none" });
  if (checker && checker.running) {
    box.append(h("p", { text: "the model checker is finding the shortest October race of the legacy core…" }));
  } else if (checker && checker.trace_url) {
    box.append(h("p", {}, what, h("a", { href: checker.trace_url, class: "trace-link" }, "step through the checker's shortest October race"),
      ` (${checker.commands[0]}).`));
  } else if (checker) {
    box.append(h("p", { text: `the checker found no legacy counterexample to show (${checker.legacy.join("; ")})` }));
  } else {
    box.append(h("p", {}, what, h("a", { href: "#trace" }, "step through a checker counterexample"), " (dnsctl check --guard off --json cx.json, then open it below)."));
  }
  if (checker && checker.guard_held != null) {
    box.append(h("p", { text: `the model checker says the guard ${checker.guard_held ? "holds" : "does NOT hold"} (${checker.commands[checker.commands.length - 1]}): ${checker.guarded.join("; ")}` }));
  }
  return box;
}

// -- the checker trace viewer ----------------------------------------------------------------------

$("trace-file").addEventListener("change", async (ev) => {
  const file = ev.target.files[0];
  if (!file) return;
  let doc;
  try { doc = JSON.parse(await file.text()); } catch (e) { $("trace-title").textContent = `not JSON: ${e}`; $("trace-view").hidden = false; return; }
  showTrace(await fetch("/api/trace", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(doc) }));
});

async function showTrace(r) {
  const data = await r.json();
  $("trace-view").hidden = false;
  if (!r.ok) { $("trace-title").textContent = `cannot open it: ${data.detail}`; live.trace = null; return; }
  live.trace = data;
  $("trace-title").textContent = `${data.mode} counterexample (${data.kind}: ${data.invariants.join(", ")}), ${data.steps} steps` +
    (data.frames.length - 1 > data.steps ? ` and ${data.frames.length - 1 - data.steps} more without new plans` : "") +
    (data.violations.length ? ` — ${data.violations.map((v) => v.invariant + ": " + v.message).join("; ")}` : "");
  $("trace-step").max = data.frames.length - 1;
  showFrame(0);
}

// /#trace=<name>: a counterexample saved beside the stack (a race's "next:" line links here), opened at once.
async function openLinkedTrace() {
  const m = location.hash.match(/^#trace=([a-z0-9][a-z0-9-]{0,63})$/);
  if (!m) return;
  await showTrace(await fetch(`/api/traces/${m[1]}`));
  $("trace").scrollIntoView();
}
window.addEventListener("hashchange", openLinkedTrace);
// A race's link to the trace the page already shows (the same hash) opens it again: no hashchange then.
document.addEventListener("click", (ev) => {
  const a = ev.target.closest && ev.target.closest("a.trace-link");
  if (a && new URL(a.href).hash === location.hash) openLinkedTrace();
});
openLinkedTrace();

function showFrame(i) {
  const t = live.trace;
  if (!t) return;
  i = Math.max(0, Math.min(t.frames.length - 1, i));
  live.traceAt = i;
  const f = t.frames[i];
  $("trace-step").value = i;
  $("trace-pos").textContent = `step ${i} of ${t.frames.length - 1}${f.step && f.step.continuation ? " (after the counterexample)" : ""}`;
  $("trace-text").textContent = f.step ? `${f.step.n}. ${f.step.text}` : "the initial state";
  $("trace-endpoints").replaceChildren(...f.endpoints.map((e) => {
    const empty = e.dns.addresses.length === 0;
    return h("article", { class: "card " + (empty || !e.root_tree_exists ? "broken" : "ok"), "data-endpoint": e.endpoint },
      h("h3", { text: e.endpoint }),
      h("dl", {},
        h("dt", { text: "root" }), h("dd", {}, e.root_tree ? `${e.root_tree} ${e.root_tree_exists ? "(plan " + e.root_plan + ")" : "(MISSING)"}` : "no root record"),
        h("dt", { text: "rollback" }), h("dd", {}, e.rollback_tree ? `${e.rollback_tree} ${e.rollback_tree_exists ? "(plan " + e.rollback_plan + ")" : "(MISSING)"}` : "none"),
        h("dt", { text: "trees" }), h("dd", {}, e.trees.map((x) => `${x.tree} plan ${x.plan}${x.complete ? "" : " (partial)"}`).join(", ") || "none"),
        h("dt", { text: "lock" }), h("dd", {}, e.lock ? `${e.lock.holder} counter ${e.lock.counter} expires ${e.lock.expires}` : "free"),
        h("dt", { text: "_applied" }), h("dd", {}, e.applied ? `plan ${e.applied.version} (${e.applied.tree})` : "none"),
        h("dt", { text: "newest plan" }), h("dd", {}, String(e.newest_plan)),
        h("dt", { text: "DNS answer" }), h("dd", { class: "trace-dns", "data-addresses": e.dns.addresses.length },
          h("span", { class: empty ? "badge bad" : "badge ok" }, `${e.dns.rcode} with ${plural(e.dns.addresses.length, "address")}`),
          e.dns.addresses.length ? " " + e.dns.addresses.join(", ") : "")));
  }));
  $("trace-machines").querySelector("tbody").replaceChildren(...f.machines.map((m) => h("tr", {},
    h("th", { scope: "row", text: m.enactor }), h("td", { text: m.endpoint }), h("td", { text: m.task }), h("td", { text: m.phase }),
    h("td", { text: m.plan ?? "—" }), h("td", { text: m.applied_version }), h("td", { text: m.holds_lock ? "holds it" : (m.lock_seen || "—") }),
    h("td", { class: m.stuck ? "state-stuck" : "", text: `${m.flip_failures} flips, ${m.losses} losses${m.stuck ? " (stuck)" : ""}` }))));
}
$("trace-first").addEventListener("click", () => showFrame(0));
$("trace-prev").addEventListener("click", () => showFrame(live.traceAt - 1));
$("trace-next").addEventListener("click", () => showFrame(live.traceAt + 1));
$("trace-last").addEventListener("click", () => showFrame(live.trace ? live.trace.frames.length - 1 : 0));
$("trace-step").addEventListener("input", (ev) => showFrame(Number(ev.target.value)));
document.addEventListener("keydown", (ev) => {
  if (!live.trace || ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName) && document.activeElement.id !== "trace-step") return;
  if (ev.key === "ArrowRight") { showFrame(live.traceAt + 1); ev.preventDefault(); }
  if (ev.key === "ArrowLeft") { showFrame(live.traceAt - 1); ev.preventDefault(); }
});

// -- the stream ----------------------------------------------------------------------------------------

function connect() {
  const es = new EventSource("/api/stream");
  const conn = $("conn");
  es.onopen = () => { conn.textContent = "live"; conn.className = "conn live"; };
  es.onerror = () => { conn.textContent = "disconnected: reconnecting…"; conn.className = "conn down"; };
  es.addEventListener("state", (m) => { live.state = JSON.parse(m.data); scheduleDraw(); });
  es.addEventListener("events", (m) => onEvents(JSON.parse(m.data)));
  es.addEventListener("backlog", (m) => onEvents(JSON.parse(m.data).flat(), true));
  es.addEventListener("timeline", (m) => renderTimeline(JSON.parse(m.data)));
  es.addEventListener("race", (m) => renderRace(JSON.parse(m.data)));
}
checkToken();
connect();
