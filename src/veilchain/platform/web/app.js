// Veilchain dashboard: plain ES module, no build step. Talks to the same-origin API.
import * as secp from "./vendor/secp256k1.js";

const $ = (sel) => document.querySelector(sel);
const state = { token: null, address: null, roles: [], dataset: null, verdicts: {} };
const enc = new TextEncoder();

// --- helpers ------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}
const short = (s, n = 10) => (s && s.length > 2 * n + 1 ? `${s.slice(0, n)}…${s.slice(-6)}` : s ?? "");

function showError(msg) {
  const box = $("#error");
  box.textContent = msg;
  box.hidden = !msg;
}

async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = {};
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body && JSON.stringify(body) });
  if (!res.ok) {
    let detail = `${res.status} ${res.statusText}`;
    try { detail = (await res.json()).detail || detail; } catch { /* not JSON */ }
    const err = new Error(detail);
    err.status = res.status;
    throw err;
  }
  if (raw) return res;
  return res.status === 204 ? null : res.json();
}

// --- Sign-In with Ethereum, signed in the browser -------------------------------
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (h) => Uint8Array.from(h.replace(/^0x/, "").match(/../g).map((b) => parseInt(b, 16)));
const keccak = (bytes) => Uint8Array.from(window.keccak256.array(bytes));

function checksumAddress(addrHex) {
  const lower = addrHex.toLowerCase().replace(/^0x/, "");
  const h = window.keccak256(lower);
  let out = "0x";
  for (let i = 0; i < 40; i++) out += parseInt(h[i], 16) >= 8 ? lower[i].toUpperCase() : lower[i];
  return out;
}

function addressOf(privKey) {
  const pub = secp.getPublicKey(privKey, false); // 65 bytes, 0x04 prefix
  return checksumAddress(hex(keccak(pub.slice(1))).slice(-40));
}

async function personalSign(privKey, message) {
  const msg = enc.encode(message);
  const prefix = enc.encode(`\x19Ethereum Signed Message:\n${msg.length}`);
  const digest = keccak(new Uint8Array([...prefix, ...msg]));
  const [sig, recovery] = await secp.sign(digest, privKey, { recovered: true, der: false, canonical: true });
  return `0x${hex(sig)}${(27 + recovery).toString(16)}`;
}

async function signIn(keyHex) {
  const privKey = unhex(keyHex.trim());
  const address = addressOf(privKey);
  const n = await api("/auth/nonce");
  const issuedAt = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const message = [
    `${n.domain} wants you to sign in with your Ethereum account:`,
    address,
    "",
    "Sign in to the Veilchain dashboard.",
    "",
    `URI: ${n.uri}`,
    "Version: 1",
    `Chain ID: ${n.chain_id}`,
    `Nonce: ${n.nonce}`,
    `Issued At: ${issuedAt}`,
  ].join("\n");
  const signature = await personalSign(privKey, message);
  const tok = await api("/auth/login", { method: "POST", body: { message, signature } });
  Object.assign(state, { token: tok.access_token, address: tok.address, roles: tok.roles });
  $("#who").textContent = `${tok.address} (${tok.roles.join(", ") || "no role"})`;
  $("#signout-btn").hidden = false;
}

// --- auditor view ---------------------------------------------------------------
async function loadDatasets() {
  const list = await api("/datasets?limit=200");
  const body = $("#datasets tbody");
  body.replaceChildren();
  for (const d of list.data) {
    const row = el("tr", { class: "clickable", "data-testid": `dataset-${d.id}`, onclick: () => openDataset(d.id) },
      el("td", {}, String(d.id)), el("td", {}, d.name), el("td", {}, String(d.version_count)),
      el("td", {}, String(d.record_count)));
    body.append(row);
  }
  fillGranteeDatasets(list.data);
}

function versionCard(v) {
  const att = (v.attestations || []).map((a) =>
    el("div", {}, el("span", { class: a.passed ? "ok" : "bad" }, a.passed ? "passed" : "failed"),
      ` by ${short(a.auditor)} · report ${short(a.report_cid, 8)}`));
  return el("div", { class: "version" },
    el("strong", {}, `version ${v.version}`),
    el("dl", {},
      el("dt", {}, "Merkle root"), el("dd", { class: "mono" }, v.merkle_root),
      el("dt", {}, "manifest"), el("dd", { class: "mono" }, v.manifest_cid),
      el("dt", {}, "images"), el("dd", {}, String(v.record_count)),
      el("dt", {}, "method"), el("dd", {}, `${v.method} ε=${v.epsilon ?? "–"}`),
      el("dt", {}, "attestations"), el("dd", {}, ...(att.length ? att : ["none yet"]))));
}

async function openDataset(id) {
  showError("");
  const d = await api(`/datasets/${id}`);
  state.dataset = d;
  document.querySelectorAll("#datasets tr").forEach((r) => r.classList.toggle("selected", r.dataset.testid === `dataset-${id}`));
  $("#dataset-detail").hidden = false;
  $("#dataset-title").textContent = `${d.name} (#${d.id}) · owner ${short(d.owner)}`;
  $("#versions").replaceChildren(...d.versions.map(versionCard));
  const sel = $("#version-select");
  sel.replaceChildren(...d.versions.map((v) => el("option", { value: v.version }, String(v.version))));
  sel.value = String(d.versions.at(-1)?.version ?? "");
  $("#verdict").replaceChildren();
  $("#verify-status").textContent = "";
  await Promise.all([loadImages(), loadGrants()]);
}

async function loadImages() {
  const d = state.dataset;
  const v = $("#version-select").value;
  const list = await api(`/datasets/${d.id}/versions/${v}/images?limit=500`);
  const verdicts = state.verdicts[`${d.id}/${v}`] || {};
  const body = $("#images tbody");
  body.replaceChildren();
  for (const img of list.data) {
    const verdict = verdicts[img.index];
    const cell = verdict === undefined ? el("td", {}, "–")
      : verdict.ok ? el("td", { class: "ok" }, "ok")
      : el("td", { class: "bad" }, `FAILED: ${verdict.problems.join("; ")}`);
    body.append(el("tr", { "data-testid": `image-${img.index}`, class: verdict && !verdict.ok ? "bad" : "" },
      el("td", {}, String(img.index)), el("td", {}, img.image_id),
      el("td", { class: "mono" }, short(img.cid, 12)), el("td", {}, img.report?.method ?? ""),
      el("td", { "data-testid": `credentials-${img.index}` }, img.credentials?.summary ?? "–"), cell));
  }
}

async function loadGrants() {
  const body = $("#grants tbody");
  body.replaceChildren();
  try {
    const list = await api(`/datasets/${state.dataset.id}/grants`);
    for (const g of list.data) {
      body.append(el("tr", {}, el("td", { class: "mono" }, g.grantee),
        el("td", {}, g.expires_at ? new Date(g.expires_at).toLocaleString() : "never"),
        el("td", { class: g.state === "live" ? "ok" : "bad" }, g.state)));
    }
  } catch (e) {
    body.append(el("tr", {}, el("td", { colspan: 3 }, `grants hidden: ${e.message}`)));
  }
}

async function waitForJob(id, onProgress) {
  for (;;) {
    const job = await api(`/jobs/${id}`);
    onProgress(job);
    if (job.status === "succeeded" || job.status === "failed") return job;
    await new Promise((r) => setTimeout(r, 400));
  }
}

async function runVerification() {
  showError("");
  const d = state.dataset;
  const v = $("#version-select").value;
  const status = $("#verify-status");
  const job = await api(`/datasets/${d.id}/versions/${v}/verifications`, { method: "POST", body: { attest: true } });
  const done = await waitForJob(job.id, (j) => {
    status.textContent = `${j.status} ${j.stage} ${j.progress_done}/${j.progress_total}`;
  });
  if (done.status === "failed") throw new Error(`verification failed to run: ${done.error}`);
  const r = done.result;
  state.verdicts[`${d.id}/${v}`] = Object.fromEntries(r.images.map((i) => [i.index, i]));
  const bad = r.images.filter((i) => !i.ok);
  $("#verdict").replaceChildren(
    el("span", { class: r.passed ? "ok" : "bad", "data-testid": "verdict-summary" },
      r.passed ? "PASSED" : `FAILED: ${bad.length} of ${r.images.length} image(s) flagged`),
    el("div", {}, ...(r.problems || []).map((p) => el("div", { class: "bad" }, p))),
    el("div", { class: "mono" }, `report ${r.report_cid ?? "–"} · attestation tx ${r.attest_tx ?? "–"}`));
  status.textContent = "done";
  await Promise.all([loadImages(), openVersionsOnly()]);
}

async function openVersionsOnly() {
  const d = await api(`/datasets/${state.dataset.id}`);
  $("#versions").replaceChildren(...d.versions.map(versionCard));
}

async function loadAudit() {
  const body = $("#audit tbody");
  body.replaceChildren();
  try {
    const list = await api("/audit?limit=50");
    for (const e of list.data) {
      body.append(el("tr", {}, el("td", {}, String(e.seq)), el("td", {}, e.ts),
        el("td", {}, e.event), el("td", { class: "mono" }, short(e.actor)),
        el("td", { class: "mono" }, e.subject)));
    }
  } catch (e) {
    body.append(el("tr", {}, el("td", { colspan: 5 }, `audit log hidden: ${e.message}`)));
  }
}

// --- grantee view ---------------------------------------------------------------
function fillGranteeDatasets(datasets) {
  const sel = $("#g-dataset");
  const keep = sel.value;
  sel.replaceChildren(...datasets.map((d) => el("option", { value: d.id }, `${d.id}: ${d.name}`)));
  if (keep) sel.value = keep;
  fillGranteeVersions();
}

async function fillGranteeVersions() {
  const id = $("#g-dataset").value;
  if (!id) return;
  const d = await api(`/datasets/${id}`);
  $("#g-version").replaceChildren(...d.versions.map((v) => el("option", { value: v.version }, String(v.version))));
  $("#g-version").value = String(d.versions.at(-1)?.version ?? "");
}

async function loadGallery() {
  showError("");
  const id = $("#g-dataset").value;
  const v = $("#g-version").value;
  const gallery = $("#gallery");
  gallery.replaceChildren();
  const list = await api(`/datasets/${id}/versions/${v}/images?limit=500`);
  let shown = 0;
  for (const img of list.data) {
    try {
      const res = await api(`/datasets/${id}/versions/${v}/images/${img.index}/content`, { raw: true });
      const url = URL.createObjectURL(await res.blob());
      gallery.append(el("figure", { "data-testid": `decrypted-${img.index}` },
        el("img", { src: url, alt: `decrypted image ${img.image_id}` }),
        el("figcaption", {}, `${img.index}: ${img.image_id}`,
          img.credentials ? el("small", {}, ` · ${img.credentials.summary}`) : "")));
      shown++;
    } catch (e) {
      gallery.append(el("figure", { class: "bad", "data-testid": `refused-${img.index}` },
        el("figcaption", {}, `${img.index}: ${e.message}`)));
    }
  }
  $("#g-status").textContent = `${shown} of ${list.data.length} image(s) decrypted`;
}

// --- wiring -------------------------------------------------------------------------
function guard(fn) {
  return async (ev) => {
    ev?.preventDefault?.();
    try { await fn(ev); } catch (e) { showError(e.message); }
  };
}

function switchView(name) {
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.view === name));
  document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== `view-${name}`; });
}

$("#signin").addEventListener("submit", guard(async () => {
  await signIn($("#key").value);
  $("#key").value = "";
  await Promise.all([loadAudit(), state.dataset ? loadGrants() : null]);
}));
$("#signout-btn").addEventListener("click", () => {
  Object.assign(state, { token: null, address: null, roles: [] });
  $("#who").textContent = "not signed in";
  $("#signout-btn").hidden = true;
});
document.querySelectorAll(".tab").forEach((t) => t.addEventListener("click", () => switchView(t.dataset.view)));
$("#version-select").addEventListener("change", guard(loadImages));
$("#verify-btn").addEventListener("click", guard(runVerification));
$("#audit-refresh").addEventListener("click", guard(loadAudit));
$("#audit-verify").addEventListener("click", guard(async () => {
  const r = await api("/audit/verify");
  $("#audit-status").textContent = r.ok ? `hash chain intact (${r.entries} entries)` : `BROKEN at ${r.broken_at}: ${r.reason}`;
  $("#audit-status").className = r.ok ? "ok" : "bad";
}));
$("#audit-anchor").addEventListener("click", guard(async () => {
  const r = await api("/audit/anchor", { method: "POST" });
  $("#audit-status").textContent = `anchored ${r.count} entries, root ${short(r.root)} in tx ${short(r.tx_hash)}`;
  $("#audit-status").className = "ok";
  await loadAudit();
}));
$("#g-dataset").addEventListener("change", guard(fillGranteeVersions));
$("#g-load").addEventListener("click", guard(loadGallery));

guard(loadDatasets)();
