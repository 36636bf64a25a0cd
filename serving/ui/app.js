// RiskGraph investigator's workbench: the case queue, a case's verdicts and neighbourhood as
// an interactive graph, rings, paths. Plain browser JavaScript of ours, no library: the page
// calls the JSON API with the key the investigator types (kept in this tab's sessionStorage).
"use strict";

const KEY = "riskgraph.apiKey";
const LABELS = ["User", "Device", "Phone", "Address", "IP", "Merchant", "Application"];
const HUB_LEAVES = 12; // NOTE: more one-link neighbours than this and a node is drawn as a hub
const W = 900, H = 560;
const SVG_NS = "http://www.w3.org/2000/svg";

const graph = {
  nodes: new Map(),   // key -> node
  edges: new Map(),   // key -> edge
  pos: new Map(),     // key -> {x, y}
  expandedHubs: new Set(),
  marked: new Set(),  // keys drawn with a thick outline (the case's users, a ring's members)
  pathEdges: new Set(),
};

// -- the API ----------------------------------------------------------------------------------
function apiKey() { return sessionStorage.getItem(KEY) || ""; }

async function api(method, path, body) {
  const headers = { "X-API-Key": apiKey() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers,
                                  body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch (_) { data = null; }
  if (!res.ok) {
    const err = new Error(describe(data) || res.statusText);
    err.status = res.status;
    throw err;
  }
  return data;
}

function describe(data) {
  if (!data) return "";
  if (typeof data.detail === "string") return data.detail;
  if (Array.isArray(data.detail)) {
    return data.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  }
  return "";
}

function say(text, kind) {
  const box = document.getElementById("status");
  box.textContent = text;
  box.className = kind || "";
}

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (k === "className") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

// -- the graph's data -------------------------------------------------------------------------
function nodeKey(label, id) { return `${label}:${id}`; }

// The user routes give the stored label ("fraud", "cleared"); the graph routes give it as
// 1 / 0 beside the stored properties: one spelling for drawing.
function fraudLabel(given, stored) {
  if (typeof stored === "string") return stored;
  if (given === 1) return "fraud";
  if (given === 0) return "cleared";
  return given ?? null;
}

function addNode(n) {
  const p = n.properties || {};
  const key = nodeKey(n.label, n.id);
  const old = graph.nodes.get(key) || {};
  graph.nodes.set(key, {
    key, label: n.label, id: n.id, properties: { ...(old.properties || {}), ...p },
    fraud_score: n.fraud_score ?? p.fraud_score ?? old.fraud_score ?? null,
    fraud_label: fraudLabel(n.fraud_label, p.fraud_label) ?? old.fraud_label ?? null,
    default_label: n.default_label ?? p.default_label ?? old.default_label ?? null,
    hub_size: n.hub_size ?? old.hub_size ?? null,
  });
  return key;
}

function addSubgraph(sub) {
  const ids = new Map();
  const seen = [];
  for (const n of [sub.seed, ...(sub.nodes || [])]) {
    if (!n) continue;
    const key = addNode(n);
    ids.set(n.id, key);
    seen.push(key);
  }
  for (const n of graph.nodes.values()) if (!ids.has(n.id)) ids.set(n.id, n.key);
  for (const e of sub.edges || []) {
    const src = ids.get(e.src), dst = ids.get(e.dst);
    if (!src || !dst) continue;
    graph.edges.set(`${e.type}|${src}|${dst}`, { type: e.type, src, dst, properties: e.properties });
  }
  return seen;
}

function clearGraph() {
  graph.nodes.clear(); graph.edges.clear(); graph.pos.clear();
  graph.expandedHubs.clear(); graph.marked.clear(); graph.pathEdges.clear();
}

async function neighbourhood(label, id, hops) {
  try {
    return await api("GET", `/v1/graph/${encodeURIComponent(label)}/${encodeURIComponent(id)}` +
                            `/neighbourhood?hops=${hops}`);
  } catch (err) {
    // NOTE: a server without the any-entity route still answers a user's neighbourhood.
    if (err.status !== 404 || label !== "User") throw err;
    return api("GET", `/v1/users/${encodeURIComponent(id)}/neighbourhood?hops=${hops}&fanout=50`);
  }
}

// -- layout: a small force simulation, seeded from the ids so that a graph looks the same ----
function seedPosition(key) {
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) { h ^= key.charCodeAt(i); h = Math.imul(h, 16777619); }
  const a = ((h >>> 0) % 3600) / 3600 * 2 * Math.PI, r = 80 + ((h >>> 12) % 180);
  return { x: W / 2 + r * Math.cos(a), y: H / 2 + r * Math.sin(a) };
}

function visible() {
  const degree = new Map(), neighbours = new Map();
  for (const e of graph.edges.values()) {
    for (const [a, b] of [[e.src, e.dst], [e.dst, e.src]]) {
      degree.set(a, (degree.get(a) || 0) + 1);
      if (!neighbours.has(a)) neighbours.set(a, new Set());
      neighbours.get(a).add(b);
    }
  }
  const hidden = new Set(), hubs = new Map();
  for (const [key, near] of neighbours) {
    if (graph.expandedHubs.has(key)) continue;
    const leaves = [...near].filter((k) => degree.get(k) === 1 && !graph.marked.has(k));
    if (leaves.length > HUB_LEAVES) {
      leaves.forEach((k) => hidden.add(k));
      hubs.set(key, leaves.length);
    }
  }
  return { hidden, hubs };
}

function layout(keys) {
  const pos = graph.pos;
  for (const k of keys) if (!pos.has(k)) pos.set(k, seedPosition(k));
  const edges = [...graph.edges.values()].filter((e) => keys.includes(e.src) && keys.includes(e.dst));
  const n = keys.length, k0 = Math.sqrt((W * H) / Math.max(n, 1)) * 0.55;
  for (let it = 0; it < 220; it++) {
    const t = 18 * (1 - it / 220) + 0.5;
    const disp = new Map(keys.map((k) => [k, { x: 0, y: 0 }]));
    for (let i = 0; i < n; i++) {
      const a = pos.get(keys[i]);
      for (let j = i + 1; j < n; j++) {
        const b = pos.get(keys[j]);
        let dx = a.x - b.x, dy = a.y - b.y;
        const d2 = Math.max(dx * dx + dy * dy, 0.01), f = (k0 * k0) / d2;
        const da = disp.get(keys[i]), db = disp.get(keys[j]);
        da.x += dx * f; da.y += dy * f; db.x -= dx * f; db.y -= dy * f;
      }
    }
    for (const e of edges) {
      const a = pos.get(e.src), b = pos.get(e.dst);
      const dx = a.x - b.x, dy = a.y - b.y, d = Math.max(Math.hypot(dx, dy), 0.1), f = d / k0;
      const da = disp.get(e.src), db = disp.get(e.dst);
      da.x -= dx * f; da.y -= dy * f; db.x += dx * f; db.y += dy * f;
    }
    for (const k of keys) {
      const p = pos.get(k), d = disp.get(k), len = Math.max(Math.hypot(d.x, d.y), 0.01);
      p.x = Math.min(W - 30, Math.max(30, p.x + (d.x / len) * Math.min(len, t) + (W / 2 - p.x) * 0.01));
      p.y = Math.min(H - 24, Math.max(24, p.y + (d.y / len) * Math.min(len, t) + (H / 2 - p.y) * 0.01));
    }
  }
}

// -- drawing ----------------------------------------------------------------------------------
function colour(n) {
  if (n.fraud_label === "fraud") return "#c62828";
  if (n.default_label === true) return "#ef6c00";
  if (n.fraud_label === "cleared") return "#2e7d32";
  if (typeof n.fraud_score === "number") {
    const s = Math.max(0, Math.min(1, n.fraud_score));
    return `rgb(${Math.round(150 + 105 * s)},${Math.round(160 - 130 * s)},${Math.round(175 - 145 * s)})`;
  }
  return n.label === "User" ? "#5c7fa3" : "#9aa5b1";
}

function shape(n, r) {
  switch (n.label) {
    case "User": return svg("circle", { r });
    case "Device": return svg("rect", { x: -r, y: -r, width: 2 * r, height: 2 * r, rx: 2 });
    case "Phone": return svg("polygon", { points: `0,${-r - 2} ${r + 2},0 0,${r + 2} ${-r - 2},0` });
    case "Address": return svg("polygon", { points: `0,${-r - 2} ${r + 2},${r} ${-r - 2},${r}` });
    case "IP": {
      const pts = [];
      for (let i = 0; i < 6; i++) {
        const a = Math.PI / 3 * i;
        pts.push(`${(r + 1) * Math.cos(a)},${(r + 1) * Math.sin(a)}`);
      }
      return svg("polygon", { points: pts.join(" ") });
    }
    case "Merchant": {
      const pts = [];
      for (let i = 0; i < 10; i++) {
        const a = Math.PI / 5 * i - Math.PI / 2, rr = i % 2 ? r * 0.55 : r + 3;
        pts.push(`${rr * Math.cos(a)},${rr * Math.sin(a)}`);
      }
      return svg("polygon", { points: pts.join(" ") });
    }
    default: return svg("rect", { x: -r * 0.8, y: -r * 0.6, width: 1.6 * r, height: 1.2 * r });
  }
}

function display(n) {
  const p = n.properties || {};
  return p.masked || p.name_masked || n.id;
}

function draw() {
  const box = document.getElementById("graph");
  box.replaceChildren();
  const { hidden, hubs } = visible();
  const keys = [...graph.nodes.keys()].filter((k) => !hidden.has(k)).sort();
  layout(keys);
  const shown = new Set(keys);
  const gEdges = svg("g", { class: "edges" }), gNodes = svg("g", { class: "nodes" });
  for (const [ek, e] of graph.edges) {
    if (!shown.has(e.src) || !shown.has(e.dst)) continue;
    const a = graph.pos.get(e.src), b = graph.pos.get(e.dst);
    const line = svg("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y,
                               class: graph.pathEdges.has(ek) ? "edge path" : "edge" });
    line.append(Object.assign(svg("title"), { textContent: e.type }));
    gEdges.append(line);
  }
  for (const key of keys) {
    const n = graph.nodes.get(key), p = graph.pos.get(key);
    const hub = hubs.get(key) ?? n.hub_size;
    const r = hub ? 12 + Math.min(10, Math.log2(hub + 1)) : n.label === "User" ? 8 : 7;
    const g = svg("g", { transform: `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})`,
                         class: `node ${graph.marked.has(key) ? "marked" : ""}`,
                         "data-testid": "node", "data-label": n.label, "data-id": n.id,
                         "data-fraud-label": n.fraud_label || "" });
    const s = shape(n, r);
    s.setAttribute("fill", colour(n));
    g.append(s);
    const title = svg("title");
    title.textContent = `${n.label} ${display(n)}` + (hub ? ` (hub: ${hub} more)` : "");
    g.append(title);
    const text = svg("text", { y: r + 11, class: "caption" });
    text.textContent = (n.label === "User" ? n.id : display(n)).slice(0, 18) + (hub ? ` +${hub}` : "");
    g.append(text);
    g.addEventListener("click", () => onNode(key, Boolean(hubs.get(key))));
    gNodes.append(g);
  }
  box.append(gEdges, gNodes);
}

function drawLegend() {
  const legend = document.getElementById("legend");
  legend.replaceChildren(
    ...[["confirmed fraud", "#c62828"], ["default", "#ef6c00"], ["cleared", "#2e7d32"],
        ["risk 0 → 1", "linear"]].map(([name, c]) => {
      const sw = el("span", { className: `swatch ${c === "linear" ? "ramp" : ""}` });
      if (c !== "linear") sw.style.background = c;
      return el("span", { className: "key" }, sw, name);
    }),
    el("span", { className: "key" }, "● user ■ device ◆ phone ▲ address ⬢ IP ★ merchant"));
}

async function onNode(key, isHub) {
  const n = graph.nodes.get(key);
  const info = document.getElementById("node-info");
  const rows = [["label", n.label], ["id", n.id], ["fraud score", n.fraud_score ?? "—"],
                ["fraud label", n.fraud_label ?? "—"], ["default", n.default_label ?? "—"],
                ...Object.entries(n.properties || {}).filter(([k]) => !k.endsWith("_label"))];
  info.replaceChildren(el("h4", {}, `${n.label} ${display(n)}`),
                       el("dl", {}, ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))])));
  if (isHub) {
    graph.expandedHubs.add(key);
    draw();
    return;
  }
  try {
    addSubgraph(await neighbourhood(n.label, n.id, 1));
    draw();
  } catch (err) {
    if (err.status === 404 && n.label !== "User") {
      say(`expanding a ${n.label} needs the graph routes (/v1/graph/...), not on this server`);
    } else {
      say(`cannot expand ${n.label} ${display(n)}: ${err.message}`, "error");
    }
  }
}

// -- cases ------------------------------------------------------------------------------------
let currentCase = null;

async function loadQueue(ev, quiet) {
  if (ev) ev.preventDefault();
  const q = new URLSearchParams({ status: document.getElementById("f-status").value });
  for (const [name, id] of [["product", "f-product"], ["reason", "f-reason"], ["assignee", "f-assignee"]]) {
    const v = document.getElementById(id).value.trim();
    if (v) q.set(name, v);
  }
  try {
    const data = await api("GET", `/v1/cases?${q}`);
    const list = document.getElementById("queue");
    list.replaceChildren(...data.cases.map((c) => el("li", {
      className: "case-row", dataset: { caseId: c.case_id, testid: "case-row" },
      on: { click: () => openCase(c.case_id) } },
      el("strong", {}, c.case_id), el("br"),
      `risk ${c.risk.toFixed(2)} · ${c.amount.toLocaleString()} · ${c.items} verdicts`,
      el("br"), el("small", {}, [c.products.join(", "), c.reasons.slice(0, 6).join(", ")].join(" · ")),
      c.assignee ? el("small", { className: "assignee" }, ` → ${c.assignee}`) : "")));
    if (!quiet) say(`${data.cases.length} ${q.get("status")} cases`);
  } catch (err) { say(`queue: ${err.message}`, "error"); }
}

async function openCase(caseId) {
  try {
    const c = await api("GET", `/v1/cases/${encodeURIComponent(caseId)}`);
    currentCase = c;
    renderCase(c);
    clearGraph();
    const users = [...new Set(c.verdicts.map((v) => v.user_id))];
    for (const u of users) graph.marked.add(nodeKey("User", u));
    for (const u of users.slice(0, 12)) addSubgraph(await neighbourhood("User", u, 2));
    draw();
    say(`case ${c.case_id}: ${c.verdicts.length} verdicts, ${users.length} accounts`);
  } catch (err) { say(`case: ${err.message}`, "error"); }
}

function renderCase(c) {
  document.getElementById("case").classList.remove("hidden");
  document.getElementById("case-title").textContent = c.case_id;
  const meta = [`status ${c.status}`, c.disposition ? `disposition ${c.disposition}` : "",
                c.ring_id ? `ring ${c.ring_id}` : "", `risk ${c.risk.toFixed(3)}`,
                `amount ${c.amount.toLocaleString()}`, c.assignee ? `assigned to ${c.assignee}` : ""];
  document.getElementById("case-meta").textContent = meta.filter(Boolean).join(" · ");
  for (const id of ["btn-confirm", "btn-clear", "btn-default"]) {
    document.getElementById(id).disabled = c.status !== "open";
  }
  const body = document.querySelector("#verdicts tbody");
  body.replaceChildren(...c.verdicts.map((v) => el("tr", { dataset: { testid: "verdict-row" } },
    el("td", {}, v.application_id), el("td", {}, v.user_id), el("td", {}, v.product),
    el("td", {}, v.amount.toLocaleString()), el("td", {}, v.risk.toFixed(3)),
    el("td", {}, el("ul", { className: "reasons" }, ...((v.verdict || {}).reasons || []).map(
      (r) => el("li", { title: r.message_zh }, el("code", {}, r.code), " ", r.message_en)))))));
  document.getElementById("notes").replaceChildren(...c.notes.map((n) => el("li", {},
    el("small", {}, `${n.author_name || n.author} · ${new Date(n.at).toLocaleString()}`), el("br"), n.text)));
}

async function dispose(disposition) {
  if (!currentCase) return;
  try {
    const c = await api("POST", `/v1/cases/${encodeURIComponent(currentCase.case_id)}/disposition`,
                        { disposition });
    currentCase = c;
    renderCase(c);
    await refreshLabels();
    await loadQueue(null, true);
    say(`case ${c.case_id} closed as ${c.disposition}`, "ok");
  } catch (err) { say(`disposition: ${err.message}`, "error"); }
}

async function refreshLabels() {
  // NOTE: the labels are written behind the answer; re-read the case's accounts to show them.
  const users = [...graph.marked].map((k) => graph.nodes.get(k)).filter((n) => n && n.label === "User");
  for (const n of users) {
    try { addSubgraph(await neighbourhood("User", n.id, 1)); } catch (_) { /* shown as before */ }
  }
  draw();
}

// -- rings and paths --------------------------------------------------------------------------
async function loadRings() {
  try {
    const data = await api("GET", "/v1/rings?limit=50");
    document.getElementById("rings").replaceChildren(...data.rings.map((r) => el("li", {
      className: "case-row", dataset: { testid: "ring-row" }, on: { click: () => openRing(r.ring_id) } },
      el("strong", {}, r.ring_id), el("br"),
      `${r.size} accounts · risk ${Number(r.risk).toFixed(2)} · fraud ${(100 * r.confirmed_fraud_share).toFixed(0)}%` +
      ` · at stake ${Number(r.money_at_stake).toLocaleString()}`)));
    say(`${data.rings.length} rings`);
  } catch (err) {
    say(err.status === 404 ? "rings are not available on this server" : `rings: ${err.message}`, "error");
  }
}

async function openRing(ringId) {
  try {
    const r = await api("GET", `/v1/rings/${encodeURIComponent(ringId)}`);
    clearGraph();
    addSubgraph({ seed: null, nodes: r.nodes || [], edges: r.edges || [] });
    for (const m of r.members || []) graph.marked.add(nodeKey("User", m.user_id || m.id || m));
    draw();
    say(`ring ${ringId}: ${r.size} accounts`);
  } catch (err) { say(`ring: ${err.message}`, "error"); }
}

async function findPaths(ev) {
  ev.preventDefault();
  const q = new URLSearchParams({
    from_label: document.getElementById("p-from-label").value,
    from_id: document.getElementById("p-from-id").value.trim(),
    to_label: document.getElementById("p-to-label").value,
    to_id: document.getElementById("p-to-id").value.trim(),
    max_hops: document.getElementById("p-hops").value, limit: "5" });
  try {
    const data = await api("GET", `/v1/graph/paths?${q}`);
    graph.pathEdges.clear();
    const list = document.getElementById("paths");
    list.replaceChildren(...data.paths.map((p) => {
      addSubgraph({ seed: null, nodes: p.nodes, edges: p.edges });
      for (const e of p.edges) {
        const src = [...graph.nodes.values()].find((n) => n.id === e.src);
        const dst = [...graph.nodes.values()].find((n) => n.id === e.dst);
        if (src && dst) graph.pathEdges.add(`${e.type}|${src.key}|${dst.key}`);
      }
      return el("li", { dataset: { testid: "path-row" } },
                p.nodes.map((n) => `${n.label} ${(n.properties || {}).masked || n.id}`).join(" → "));
    }));
    draw();
    say(`${data.paths.length} paths`);
  } catch (err) {
    say(err.status === 404 ? `paths: ${err.message}` : `paths: ${err.message}`, "error");
  }
}

// -- wiring -----------------------------------------------------------------------------------
function useKey(ev) {
  if (ev) ev.preventDefault();
  const input = document.getElementById("api-key");
  if (input.value.trim()) sessionStorage.setItem(KEY, input.value.trim());
  input.value = "";
  const id = apiKey().split("_")[1] || "";
  document.getElementById("whoami").textContent = apiKey() ? `key ${id}` : "no key";
  if (apiKey()) loadQueue();
}

function init() {
  for (const id of ["p-from-label", "p-to-label"]) {
    document.getElementById(id).replaceChildren(...LABELS.map((l) => el("option", {}, l)));
  }
  document.getElementById("key-form").addEventListener("submit", useKey);
  document.getElementById("case-filters").addEventListener("submit", loadQueue);
  document.getElementById("load-rings").addEventListener("click", loadRings);
  document.getElementById("path-form").addEventListener("submit", findPaths);
  document.getElementById("btn-confirm").addEventListener("click", () => dispose("confirmed_fraud"));
  document.getElementById("btn-clear").addEventListener("click", () => dispose("cleared"));
  document.getElementById("btn-default").addEventListener("click", () => dispose("default_risk"));
  document.getElementById("assign-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!currentCase) return;
    try {
      renderCase(currentCase = await api("POST", `/v1/cases/${encodeURIComponent(currentCase.case_id)}/assign`,
                                         { assignee: document.getElementById("assignee").value.trim() }));
      say(`assigned to ${currentCase.assignee}`, "ok");
    } catch (err) { say(`assign: ${err.message}`, "error"); }
  });
  document.getElementById("note-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!currentCase) return;
    try {
      await api("POST", `/v1/cases/${encodeURIComponent(currentCase.case_id)}/notes`,
                { text: document.getElementById("note-text").value });
      document.getElementById("note-text").value = "";
      renderCase(currentCase = await api("GET", `/v1/cases/${encodeURIComponent(currentCase.case_id)}`));
    } catch (err) { say(`note: ${err.message}`, "error"); }
  });
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => {
      for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t === tab);
      for (const p of document.querySelectorAll(".pane")) {
        p.classList.toggle("hidden", p.id !== `pane-${tab.dataset.tab}`);
      }
    });
  }
  drawLegend();
  useKey();
}

document.addEventListener("DOMContentLoaded", init);
