// Veilchain dashboard: plain ES module, no build step. Talks to the same-origin API.
//
// Two rules hold every action together:
// - an action remembers the data set and version it was started on, and writes its result
//   there; a response that arrives after the user moved on is kept for that data set or
//   discarded, never shown under another one;
// - signing out (or the token expiring) bumps `epoch`, so every response of the old session
//   still in flight is dropped, and wipes everything that needed the session.
import * as secp from "./vendor/secp256k1.js";

const $ = (sel) => document.querySelector(sel);
const enc = new TextEncoder();
const SIGNED_IN_ROLES = ["admin", "auditor", "keyservice", "institution"];

const state = {
  epoch: 0, // bumped at sign-in and sign-out: responses of another session are dropped
  session: null, // {token, address, roles, expiresAt, timer}
  datasets: [],
  selection: null, // {ds, version}: what the card shows
  cardSeq: 0, // bumped whenever the card changes data set or version
  gallerySeq: 0, // bumped whenever the gallery's data set or version changes
  dataset: null, // the open data set (GET /datasets/{id})
  methods: [],
  verdicts: {}, // "ds/v" -> verification report
  running: {}, // "ds/v" -> {text, done, total} while a verification runs
  objectUrls: [], // decrypted images on screen; revoked when cleared
};

// --- small helpers ------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
const short = (s, n = 8) => (s && s.length > 2 * n + 3 ? `${s.slice(0, n)}…${s.slice(-6)}` : s ?? "");
const sameAddress = (a, b) => !!a && !!b && a.toLowerCase() === b.toLowerCase();
const num = (x) => (x === null || x === undefined || x === "" ? null : Number(x));
const key = (ds, v) => `${ds}/${v}`;

/** One way to show a time everywhere: UTC to the second, the local time on hover. */
function timeEl(value) {
  if (value === null || value === undefined || value === "") return el("span", {}, "–");
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(d.getTime())) return el("span", {}, String(value));
  const iso = d.toISOString();
  return el("time", { datetime: iso, title: `${d.toLocaleString()} (your time)` },
    `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`);
}

function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function showError(msg) {
  const box = $("#error");
  box.textContent = msg || "";
  box.hidden = !msg;
}

/** Status changes for screen readers (the visible text is set by each view). */
function announce(msg) {
  const box = $("#announce");
  box.append(el("p", {}, msg)); // appended, so a burst of changes is read in order
  while (box.childElementCount > 5) box.firstElementChild.remove();
}

class StaleResponse extends Error {}
class Friendly extends Error {}

async function api(path, { method = "GET", body, form, raw = false } = {}) {
  const epoch = state.epoch;
  const headers = {};
  if (state.session) headers.Authorization = `Bearer ${state.session.token}`;
  let payload;
  if (form) payload = form;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload });
  } catch {
    throw new Friendly("The server did not answer; check that it is running and try again.");
  }
  if (epoch !== state.epoch) throw new StaleResponse();
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).detail || detail; } catch { /* not JSON */ }
    const err = new Error(detail);
    err.status = res.status;
    err.hadSession = !!headers.Authorization;
    throw err;
  }
  if (raw) return res;
  const out = res.status === 204 ? null : await res.json();
  if (epoch !== state.epoch) throw new StaleResponse();
  return out;
}

/** Wrap a UI action: clears the old error, says what went wrong in plain words. */
function action(label, fn) {
  return async (ev) => {
    ev?.preventDefault?.();
    showError("");
    try {
      await fn(ev);
    } catch (e) {
      if (e instanceof StaleResponse) return;
      showError(explain(label, e));
    }
  };
}

function explain(label, e) {
  if (e instanceof Friendly) return e.message;
  if (e.status === 401) {
    if (e.hadSession) {
      signOut("Your session has expired.");
      return `Your session has expired; sign in again to ${label}.`;
    }
    return `Sign in to ${label}.`;
  }
  if (e.status === 403) return `Your account may not ${label}: ${e.message}.`;
  if (e.status === 429) return `Too many requests: ${e.message}.`;
  return `Could not ${label}: ${e.message}`;
}

// --- Sign-In with Ethereum -------------------------------------------------------------
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

function siweMessage(n, address) {
  const issuedAt = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  return [
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
}

/** Ask the server for a nonce, have `sign` sign the message, exchange it for a token. */
async function signInWith(address, sign) {
  const n = await api("/auth/nonce");
  const message = siweMessage(n, address);
  const signature = await sign(message);
  let tok;
  try {
    tok = await api("/auth/login", { method: "POST", body: { message, signature } });
  } catch (e) {
    if (e.status === 401) throw new Friendly(`Sign-in was refused: ${e.message}.`);
    throw e;
  }
  startSession(tok);
}

async function walletSignIn() {
  const eth = window.ethereum;
  if (!eth || typeof eth.request !== "function") {
    throw new Friendly("No Ethereum wallet was found in this browser. Install or unlock a wallet "
      + "extension (for example MetaMask) and reload the page.");
  }
  let accounts;
  try {
    accounts = await eth.request({ method: "eth_requestAccounts" });
  } catch (e) {
    throw new Friendly(e?.code === 4001 ? "You declined the connection in your wallet."
      : "Your wallet did not share an account; unlock it and try again.");
  }
  if (!accounts?.length) throw new Friendly("Your wallet has no account to sign in with.");
  const address = checksumAddress(accounts[0]);
  await signInWith(address, async (message) => {
    try {
      return await eth.request({ method: "personal_sign", params: [`0x${hex(enc.encode(message))}`, address] });
    } catch (e) {
      throw new Friendly(e?.code === 4001 ? "You declined to sign the sign-in message in your wallet."
        : "Your wallet could not sign the sign-in message; try again.");
    }
  });
}

async function keySignIn(keyText) {
  const text = keyText.trim();
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(text)) {
    throw new Friendly("A private key is 64 hexadecimal characters, optionally after 0x.");
  }
  const privKey = unhex(text);
  let address;
  try {
    address = checksumAddress(hex(keccak(secp.getPublicKey(privKey, false).slice(1))).slice(-40));
  } catch {
    throw new Friendly("That is not a usable private key (it must be between 1 and the curve order).");
  }
  await signInWith(address, async (message) => {
    const msg = enc.encode(message);
    const prefix = enc.encode(`\x19Ethereum Signed Message:\n${msg.length}`);
    const digest = keccak(new Uint8Array([...prefix, ...msg]));
    const [sig, rec] = await secp.sign(digest, privKey, { recovered: true, der: false, canonical: true });
    return `0x${hex(sig)}${(27 + rec).toString(16)}`;
  });
}

function startSession(tok) {
  if (state.session?.timer) clearTimeout(state.session.timer); // signing in over a session
  clearProtected();
  state.epoch++;
  const ms = Math.max(1, tok.expires_in - 5) * 1000;
  state.session = {
    token: tok.access_token, address: tok.address, roles: tok.roles,
    expiresAt: Date.now() + ms,
    timer: setTimeout(() => {
      signOut("Your session has expired.");
      showError("Your session has expired; sign in again.");
    }, ms),
  };
  showError("");
  renderAccount();
  announce(`Signed in as ${tok.address}${tok.roles.length ? ` (${tok.roles.join(", ")})` : ""}.`);
  afterSessionChange();
}

function signOut(reason = "Signed out.") {
  if (state.session?.timer) clearTimeout(state.session.timer);
  state.session = null;
  state.epoch++;
  clearProtected();
  showError("");
  renderAccount();
  announce(reason);
  afterSessionChange();
}

const hasRole = (...roles) => !!state.session && roles.some((r) => state.session.roles.includes(r));

function renderAccount() {
  const s = state.session;
  $("#who").textContent = s ? `${s.address} (${s.roles.join(", ") || "no role"})` : "not signed in";
  $("#signout-btn").hidden = !s;
  $("#connect-btn").hidden = !!s;
  document.querySelectorAll(".tab[data-role]").forEach((t) => {
    const roles = t.dataset.role.split(" ");
    t.hidden = !(s && (roles.includes("signed-in") || hasRole(...roles)));
  });
  const active = document.querySelector(".tab.active");
  if (active?.hidden) switchView("datasets");
}

/** Everything that was fetched with a session: audit trail, images, keys, jobs, verdicts. */
function clearProtected() {
  state.gallerySeq++;
  for (const u of state.objectUrls) URL.revokeObjectURL(u);
  state.objectUrls = [];
  state.verdicts = {};
  state.running = {};
  for (const sel of ["#audit tbody", "#api-keys tbody", "#jobs tbody", "#grants tbody"]) {
    $(sel).replaceChildren();
  }
  for (const sel of ["#gallery", "#preview", "#verdict", "#k-new", "#upload-result",
    "#image-dialog-body"]) $(sel).replaceChildren();
  for (const sel of ["#audit-status", "#g-status", "#verify-status", "#upload-status",
    "#grant-status"]) $(sel).textContent = "";
  $("#verify-progress").hidden = true;
  $("#upload-progress").hidden = true;
  if ($("#image-dialog").open) $("#image-dialog").close();
}

function afterSessionChange() {
  if (state.dataset) {
    renderCard();
    action("show the data set", loadVersion)();
  }
  const view = document.querySelector(".tab.active")?.dataset.view;
  if (view && view !== "datasets") showView(view);
}

// --- data sets list ----------------------------------------------------------------------
async function loadDatasets() {
  const list = await api("/datasets?limit=500");
  state.datasets = list.data;
  const body = $("#datasets tbody");
  body.replaceChildren();
  for (const d of list.data) {
    const open = action("open the data set", () => openDataset(d.id));
    const row = el("tr", {
      class: "clickable", tabindex: "0", "data-testid": `dataset-${d.id}`, "data-id": d.id,
      "aria-label": `data set ${d.id}, ${d.name}: open its card`,
      onclick: open,
      onkeydown: (ev) => { if (ev.key === "Enter" || ev.key === " ") open(ev); },
    }, el("td", {}, d.id), el("td", {}, d.name), el("td", {}, d.version_count),
    el("td", {}, d.record_count), el("td", {}, d.method));
    if (state.selection?.ds === d.id) row.classList.add("selected");
    body.append(row);
  }
  if (!list.data.length) body.append(el("tr", {}, el("td", { colspan: 5 }, "No data set registered yet.")));
  fillGallerySelect();
}

async function openDataset(id, version) {
  const seq = ++state.cardSeq;
  const d = await api(`/datasets/${id}`);
  if (seq !== state.cardSeq) return; // the user opened another one meanwhile
  state.dataset = d;
  const v = version ?? d.versions.at(-1)?.version ?? null;
  state.selection = { ds: d.id, version: v };
  document.querySelectorAll("#datasets tbody tr").forEach((r) => {
    const on = Number(r.dataset.id) === d.id;
    r.classList.toggle("selected", on);
    if (on) r.setAttribute("aria-current", "true"); else r.removeAttribute("aria-current");
  });
  $("#dataset-detail").hidden = false;
  renderCard();
  announce(`Opened data set ${d.id}, ${d.name}.`);
  await loadVersion();
}

function isOwner(d) {
  const me = state.session?.address;
  return !!me && (sameAddress(d.owner, me) || sameAddress(d.uploader, me));
}

function renderCard() {
  const d = state.dataset;
  if (!d) return;
  $("#dataset-title").textContent = `${d.name} (data set ${d.id})`;
  const latest = d.versions.at(-1);
  // as the manifest publishes them (plain text; line breaks kept by .statement)
  const notGiven = (x) => x ? el("span", { class: "statement" }, x) : el("span", { class: "muted" }, "not given at registration");
  const facts = [
    ["description", notGiven(d.description)],
    ["licence", notGiven(d.licence)],
    ["consent", notGiven(d.consent)],
    ["owner", el("span", { class: "mono" }, d.owner)],
    ["uploaded by", d.uploader ? el("span", { class: "mono" }, d.uploader) : "–"],
    ["size", el("span", { id: "dataset-size" }, `${d.record_count} images in version ${latest?.version ?? "–"}`)],
    ["versions", String(d.version_count)],
  ];
  $("#dataset-facts").replaceChildren(...facts.flatMap(([k, v]) =>
    [el("dt", {}, k), el("dd", { "data-testid": `fact-${k.replaceAll(" ", "-")}` }, v)]));
  $("#versions tbody").replaceChildren(...d.versions.map(versionRow));
  const sel = $("#version-select");
  sel.replaceChildren(...d.versions.map((v) => el("option", { value: v.version }, `version ${v.version}`)));
  sel.value = String(state.selection.version ?? "");
  $("#grant-form").hidden = !isOwner(d);
  if (!$("#grant-expiry").value) $("#grant-expiry").value = localInput(Date.now() + 30 * 86400e3);
  renderVerification();
}

function versionRow(v) {
  const att = (v.attestations || []).map((a) =>
    el("div", { class: "attestation" }, el("span", { class: a.passed ? "ok" : "bad" }, a.passed ? "passed" : "failed"),
      ` by ${short(a.auditor)} · report `, el("span", { class: "mono", title: a.report_cid }, short(a.report_cid))));
  return el("tr", { "data-testid": `version-${v.version}` },
    el("td", {}, v.version), el("td", {}, timeEl(v.registered_at)), el("td", {}, v.method),
    el("td", {}, v.epsilon ?? "–"), el("td", {}, v.record_count),
    el("td", { "data-testid": `attestations-${v.version}` }, att.length ? att : "none yet"),
    el("td", { class: "mono" }, v.merkle_root, el("br"), v.manifest_cid));
}

const localInput = (ms) => {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
  return d.toISOString().slice(0, 16);
};

// --- one version: privacy report, verification, preview, grants --------------------------
async function loadVersion() {
  const { ds, version } = state.selection;
  const seq = state.cardSeq;
  $("#images tbody").replaceChildren();
  $("#report-summary").replaceChildren();
  $("#report-warnings").replaceChildren();
  $("#preview").replaceChildren();
  if (version === null) return;
  const [list, grants] = await Promise.all([
    api(`/datasets/${ds}/versions/${version}/images?limit=1000`),
    state.session ? api(`/datasets/${ds}/grants`).catch((e) => e) : null,
  ]);
  if (seq !== state.cardSeq) return;
  state.images = list.data;
  renderReport(list.data, list.count);
  renderGrants(grants);
  await renderPreview(list.data, grants, seq);
}

const faceOk = (f) => f.passed === true;

function distanceBar(f, threshold) {
  const d = num(f.distance);
  const scale = Math.max(1, threshold * 1.5, d ?? 0);
  let cls = "bad";
  let verdict = `below the threshold ${threshold}: still recognizable`;
  if (f.fallback) { cls = "warn"; verdict = `covered by the fallback (${f.fallback}); not checked`; }
  else if (f.passed === null && f.low_confidence) { cls = "warn"; verdict = "low-confidence detection, unverifiable"; }
  else if (faceOk(f)) { cls = "ok"; verdict = `at or above the threshold ${threshold}`; }
  else if (d === null) { cls = "warn"; verdict = "no identity check"; }
  const fill = el("span", { class: `fill ${cls}` });
  fill.style.setProperty("width", `${Math.min(100, ((d ?? 0) / scale) * 100)}%`);
  const mark = el("span", { class: "threshold", title: `threshold ${threshold}` });
  mark.style.setProperty("left", `${(threshold / scale) * 100}%`);
  const label = `face ${f.index}: distance ${d === null ? "–" : d.toFixed(2)}, ${verdict}`;
  return el("div", { class: "bar-row", "data-testid": "face-bar" },
    el("span", { class: "bar", role: "img", "aria-label": label, title: label }, fill, mark),
    el("span", { class: `bar-label ${cls}` }, d === null ? "–" : d.toFixed(2)));
}

function imageWarnings(r) {
  const out = [];
  if (r.warning) out.push(...String(r.warning).split("; "));
  if (num(r.n_failed) > 0) out.push(`${r.n_failed} face(s) failed the identity check (published with allow_recognizable)`);
  if (r.second_look && num(r.second_look.uncovered) > 0) out.push(`the second look found ${r.second_look.uncovered} uncovered face(s)`);
  if (r.low_light) out.push("low light: detection is less reliable");
  if (r.identity_check === false && (r.faces || []).length) out.push("no identity check was run on this image's faces");
  return out;
}

function renderReport(images, count) {
  const key0 = key(state.selection.ds, state.selection.version);
  const verdicts = state.verdicts[key0];
  const reports = images.map((i) => i.report || {});
  const first = reports[0] || {};
  const threshold = num(first.identity_threshold) ?? 0.6;
  const faces = reports.map((r) => (r.faces || []).length);
  const total = faces.reduce((a, b) => a + b, 0);
  const dists = reports.flatMap((r) => (r.faces || []).map((f) => num(f.distance)).filter((x) => x !== null));
  const eps = num(first.privacy_params?.epsilon);
  const bytes = images.reduce((a, i) => a + (i.size || 0), 0);
  const warned = images.filter((i) => imageWarnings(i.report || {}).length);
  const det = first.detector || {};
  const v = state.dataset.versions.find((x) => x.version === state.selection.version);
  $("#dataset-size").textContent = `${count} images, ${fmtBytes(bytes)} encrypted, in version ${state.selection.version}`;
  const fig = (label, value, testid) => el("div", { class: "figure", "data-testid": testid },
    el("div", { class: "figure-value" }, value), el("div", { class: "figure-label" }, label));
  $("#report-summary").replaceChildren(
    el("div", { class: "figures" },
      fig("images", count, "fig-images"),
      fig("faces", total, "fig-faces"),
      fig("faces per image", count ? (total / count).toFixed(2) : "–", "fig-faces-per-image"),
      fig("smallest distance", dists.length ? Math.min(...dists).toFixed(2) : "–", "fig-min-distance"),
      fig("identity threshold", first.identity_check === false ? "no check" : threshold, "fig-threshold"),
      fig("ε (privacy budget)", eps ?? "none", "fig-epsilon"),
      fig("images with warnings", warned.length, "fig-warned")),
    el("dl", { class: "facts" },
      el("dt", {}, "method"), el("dd", {}, `${first.method ?? v?.method ?? "–"}`,
        first.privacy_params?.formal_privacy ? ` (${first.privacy_params.formal_privacy})` : ""),
      el("dt", {}, "model hash"), el("dd", { class: "mono", "data-testid": "model-hash" }, first.model_hash ?? v?.model_hash ?? "–"),
      el("dt", {}, "detector"), el("dd", {}, `${det.name ?? "–"}, threshold ${det.threshold ?? "–"}`,
        det.second_look ? ", second look on" : ""),
      el("dt", {}, "detector model"), el("dd", { class: "mono", "data-testid": "detector-hash" }, det.model_sha256 ?? "–"),
      first.privacy_note ? [el("dt", {}, "note"), el("dd", {}, first.privacy_note)] : null),
    facesPerImageChart(images, faces));
  const warnings = images.flatMap((i) => imageWarnings(i.report || {}).map((w) => `image ${i.index} (${i.image_id}): ${w}`));
  $("#report-warnings").replaceChildren(...(warnings.length
    ? [el("div", { class: "warnings", role: "note" }, el("strong", {}, `${warnings.length} warning(s) in the privacy report`),
      el("ul", {}, warnings.map((w) => el("li", {}, w))))]
    : []));
  const body = $("#images tbody");
  body.replaceChildren();
  for (const img of images) {
    const r = img.report || {};
    const w = imageWarnings(r);
    const verdict = verdicts?.images.find((x) => x.index === img.index);
    const vcell = !verdict ? el("td", { class: "muted" }, "not verified")
      : verdict.ok ? el("td", { class: "ok" }, "verified")
      : el("td", { class: "bad" }, `FAILED: ${verdict.problems.join("; ")}`);
    const open = () => openImage(img);
    body.append(el("tr", {
      "data-testid": `image-${img.index}`, tabindex: "0", class: `clickable ${verdict && !verdict.ok ? "bad" : ""}`,
      "aria-label": `image ${img.index}: open its report`, onclick: open,
      // preventDefault: else the same Enter, reaching the dialog's Close button, closes it
      onkeydown: (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); open(); } },
    },
    el("td", {}, img.index), el("td", { class: "mono" }, img.image_id),
    el("td", {}, (r.faces || []).length),
    el("td", {}, (r.faces || []).map((f) => distanceBar(f, threshold))),
    el("td", { class: w.length ? "warn" : "muted", "data-testid": `warnings-${img.index}` }, w.length ? w.join("; ") : "none"),
    vcell));
  }
}

function facesPerImageChart(images, faces) {
  const max = Math.max(1, ...faces);
  return el("figure", { class: "chart", "data-testid": "faces-chart" },
    el("figcaption", {}, "faces per image"),
    images.map((img, i) => {
      const fill = el("span", { class: "fill neutral" });
      fill.style.setProperty("width", `${(faces[i] / max) * 100}%`);
      return el("div", { class: "bar-row" }, el("span", { class: "bar-key mono" }, img.index),
        el("span", { class: "bar", role: "img", "aria-label": `image ${img.index}: ${faces[i]} face(s)` }, fill),
        el("span", { class: "bar-label" }, faces[i]));
    }));
}

function liveGrantOf(grants) {
  if (!state.session || !grants || grants instanceof Error) return null;
  return grants.data.find((g) => sameAddress(g.grantee, state.session.address) && g.state === "live") || null;
}

async function renderPreview(images, grants, seq) {
  const box = $("#preview");
  if (!state.session) {
    box.replaceChildren(el("p", { class: "muted" }, "Sign in with an account that holds a live grant to see previews."));
    return;
  }
  if (!liveGrantOf(grants)) {
    box.replaceChildren(el("p", { class: "muted" }, "Previews are shown to accounts with a live grant on this data set."));
    return;
  }
  const { ds, version } = state.selection;
  box.replaceChildren();
  for (const img of images.slice(0, 12)) {
    try {
      const url = await imageUrl(ds, version, img.index);
      if (seq !== state.cardSeq) return;
      box.append(thumb(img, url, `preview-${img.index}`));
    } catch (e) {
      if (e instanceof StaleResponse) return;
      box.append(el("figure", { class: "refused" }, el("figcaption", {}, `${img.index}: ${e.message}`)));
    }
  }
}

async function imageUrl(ds, version, index) {
  const res = await api(`/datasets/${ds}/versions/${version}/images/${index}/content`, { raw: true });
  const url = URL.createObjectURL(await res.blob());
  state.objectUrls.push(url);
  return url;
}

function thumb(img, url, testid) {
  return el("figure", { "data-testid": testid },
    el("button", { type: "button", class: "thumb", onclick: () => openImage(img, url),
      "aria-label": `open image ${img.index} (${img.image_id})` },
    el("img", { src: url, alt: `anonymized image ${img.image_id}` })),
    el("figcaption", {}, `${img.index}: ${img.image_id}`));
}

function renderGrants(grants) {
  const body = $("#grants tbody");
  body.replaceChildren();
  if (!state.session) {
    body.append(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "Sign in to see grants.")));
    return;
  }
  if (grants instanceof Error) {
    body.append(el("tr", {}, el("td", { colspan: 4, class: "muted" }, explain("see the grants", grants))));
    return;
  }
  const owner = isOwner(state.dataset);
  const ds = state.dataset.id;
  for (const g of grants.data) {
    const revoke = owner && g.state === "live"
      ? el("button", { type: "button", "data-testid": `revoke-${g.grantee}`, onclick: action("revoke the grant", async (ev) => {
        ev.target.disabled = true;
        await api(`/datasets/${ds}/grants/${g.grantee}`, { method: "DELETE" });
        announce(`Grant of ${g.grantee} revoked.`);
        if (state.dataset?.id === ds) await refreshGrants();
      }) }, "Revoke")
      : "";
    body.append(el("tr", { "data-testid": `grant-${g.grantee}` }, el("td", { class: "mono" }, g.grantee),
      el("td", {}, timeEl(g.expires_at)),
      el("td", { class: g.state === "live" ? "ok" : "bad" }, g.state), el("td", {}, revoke)));
  }
  if (!grants.data.length) body.append(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No grant you may see.")));
}

/** True revocation: a job re-encrypts the newest version under fresh keys as a new version. */
async function reencrypt() {
  const ds = state.dataset.id;
  const btn = $("#reencrypt-btn");
  btn.disabled = true;
  try {
    const job = await api(`/datasets/${ds}/reencryptions`, { method: "POST" });
    const done = await followJob(job.id, (j) => {
      if (state.dataset?.id === ds) $("#grant-status").textContent = describeJob(j);
    });
    if (done.status === "failed") throw new Friendly(`Re-encrypting data set ${ds} failed: ${done.error}`);
    announce(`Data set ${ds} re-encrypted as version ${done.result.version}.`);
    if (state.dataset?.id === ds) {
      $("#grant-status").textContent = `re-encrypted as version ${done.result.version}`;
      const d = await api(`/datasets/${ds}`);
      if (state.dataset?.id === ds) {
        state.dataset = d;
        $("#versions tbody").replaceChildren(...d.versions.map(versionRow));
      }
    }
  } finally {
    btn.disabled = false;
  }
}

async function refreshGrants() {
  const seq = state.cardSeq;
  const grants = await api(`/datasets/${state.dataset.id}/grants`).catch((e) => e);
  if (seq === state.cardSeq) renderGrants(grants);
}

async function createGrant() {
  const ds = state.dataset.id;
  const grantee = $("#grant-address").value.trim();
  if (!/^0x[0-9a-fA-F]{40}$/.test(grantee)) throw new Friendly("A grantee is an Ethereum address: 0x and 40 hexadecimal characters.");
  const when = new Date($("#grant-expiry").value);
  if (Number.isNaN(when.getTime())) throw new Friendly("Pick the date and time the grant ends.");
  if (when.getTime() <= Date.now()) throw new Friendly("The expiry must lie in the future.");
  const btn = $("#grant-btn");
  btn.disabled = true;
  $("#grant-status").textContent = "sending the grant to the chain…";
  try {
    await api(`/datasets/${ds}/grants`, { method: "POST", body: { grantee, expires_at: when.toISOString() } });
  } finally {
    btn.disabled = false;
    $("#grant-status").textContent = "";
  }
  announce(`Granted ${grantee} access to data set ${ds}.`);
  $("#grant-status").textContent = `granted to ${grantee}`;
  $("#grant-address").value = "";
  if (state.dataset?.id === ds) await refreshGrants();
}

// --- verification: tied to the data set and version it was started on -----------------------
function renderVerification() {
  if (!state.selection) return;
  const k = key(state.selection.ds, state.selection.version);
  const run = state.running[k];
  const report = state.verdicts[k];
  for (const b of ["#verify-btn", "#attest-btn"]) $(b).disabled = !!run;
  const bar = $("#verify-progress");
  bar.hidden = !run;
  if (run) {
    if (run.total > 0) { bar.max = run.total; bar.value = run.done; } else bar.removeAttribute("value");
  }
  $("#verify-status").textContent = run ? run.text : report ? "done" : "";
  if (!report) { $("#verdict").replaceChildren(); return; }
  const bad = report.images.filter((i) => !i.ok);
  $("#verdict").replaceChildren(
    el("span", { class: report.passed ? "ok" : "bad", "data-testid": "verdict-summary" },
      report.passed ? `PASSED: all ${report.images.length} images match the chain`
        : `FAILED: ${bad.length} of ${report.images.length} image(s) flagged`),
    el("span", { class: "muted" }, ` (data set ${report.dataset_id}, version ${report.version})`),
    el("div", {}, (report.problems || []).map((p) => el("div", { class: "bad" }, p))),
    el("div", { class: "mono" }, report.attest_tx
      ? `attested on chain: report ${report.report_cid} · transaction ${report.attest_tx}`
      : "not attested on chain"));
}

const STAGES = {
  "": "starting", queued: "starting", resuming: "resuming after a server restart",
  succeeded: "finished", failed: "failed", verify: "checking images", attest: "recording the verdict on chain",
  "anonymize+encrypt+pin": "anonymizing, encrypting and pinning", register: "recording on chain",
};

function describeJob(j) {
  if (j.status === "queued") return "waiting for a worker";
  const stage = STAGES[j.stage] ?? j.stage;
  if (j.progress_total > 0) return `${stage}: ${j.progress_done} of ${j.progress_total}`;
  return `${stage}…`;
}

async function followJob(id, onProgress) {
  for (;;) {
    const job = await api(`/jobs/${id}`);
    onProgress(job);
    if (job.status === "succeeded" || job.status === "failed") return job;
    await new Promise((r) => setTimeout(r, 400));
  }
}

async function runVerification(attest) {
  const { ds, version } = state.selection; // fixed now: later clicks elsewhere change nothing
  const k = key(ds, version);
  if (state.running[k]) return;
  state.running[k] = { text: "submitting…", done: 0, total: 0 };
  delete state.verdicts[k];
  renderVerification();
  const current = () => state.selection && key(state.selection.ds, state.selection.version) === k;
  try {
    const job = await api(`/datasets/${ds}/versions/${version}/verifications`, { method: "POST", body: { attest } });
    const done = await followJob(job.id, (j) => {
      if (!state.running[k]) return;
      state.running[k] = { text: describeJob(j), done: j.progress_done, total: j.progress_total };
      if (current()) renderVerification();
    });
    if (done.status === "failed") throw new Friendly(`The verification of data set ${ds} version ${version} could not run: ${done.error}`);
    state.verdicts[k] = done.result;
    const r = done.result;
    announce(`Verification of data set ${ds} version ${version}: ${r.passed ? "passed" : "failed"}.`);
  } finally {
    delete state.running[k];
  }
  if (current()) {
    renderVerification();
    renderReport(state.images, state.images.length);
    const d = await api(`/datasets/${ds}`);
    if (state.dataset?.id === ds) {
      state.dataset = d;
      $("#versions tbody").replaceChildren(...d.versions.map(versionRow));
    }
  }
}

// --- image detail ---------------------------------------------------------------------------------
function openImage(img, url) {
  const r = img.report || {};
  const threshold = num(r.identity_threshold) ?? 0.6;
  const w = imageWarnings(r);
  $("#image-dialog-title").textContent = `Image ${img.index} (${img.image_id})`;
  $("#image-dialog-body").replaceChildren(el("div", {},
    url ? el("img", { src: url, class: "detail", alt: `anonymized image ${img.image_id}` }) : null,
    el("dl", { class: "facts" },
      el("dt", {}, "size"), el("dd", {}, `${img.width} × ${img.height} px, ${fmtBytes(img.size)} encrypted`),
      el("dt", {}, "CID"), el("dd", { class: "mono" }, img.cid),
      el("dt", {}, "ciphertext SHA-256"), el("dd", { class: "mono" }, img.ciphertext_sha256),
      el("dt", {}, "anonymized SHA-256"), el("dd", { class: "mono" }, img.anonymized_sha256),
      el("dt", {}, "method"), el("dd", {}, r.method ?? "–"),
      el("dt", {}, "ε"), el("dd", {}, r.privacy_params?.epsilon ?? "none"),
      el("dt", {}, "faces"), el("dd", {}, (r.faces || []).length),
      el("dt", {}, "second look"), el("dd", {}, r.second_look ? `${r.second_look.found} found, ${r.second_look.uncovered} uncovered` : "–"),
      el("dt", {}, "Content Credentials"),
      el("dd", { "data-testid": "image-credentials" }, img.credentials
        ? [img.credentials.summary, el("br"), el("span", { class: "mono" }, `signing certificate ${img.credentials.signer_serial}`)]
        : "none (registered before images were signed)")),
    el("h3", {}, "distance of each face to its original (threshold marked)"),
    (r.faces || []).length ? (r.faces || []).map((f) => distanceBar(f, threshold)) : el("p", { class: "muted" }, "no face"),
    w.length ? el("div", { class: "warnings" }, el("strong", {}, "warnings"), el("ul", {}, w.map((x) => el("li", {}, x)))) : null));
  $("#image-dialog").showModal();
}

// --- grantee gallery ----------------------------------------------------------------------------
function fillGallerySelect() {
  const sel = $("#g-dataset");
  const keep = sel.value;
  sel.replaceChildren(...state.datasets.map((d) => el("option", { value: d.id }, `${d.id}: ${d.name}`)));
  if (keep) sel.value = keep;
  fillGalleryVersions();
}

function fillGalleryVersions() {
  const d = state.datasets.find((x) => String(x.id) === $("#g-dataset").value);
  const n = d?.version_count ?? 0;
  $("#g-version").replaceChildren(...Array.from({ length: n }, (_, i) => el("option", { value: i + 1 }, `version ${i + 1}`)));
  $("#g-version").value = String(n || "");
}

async function loadGallery() {
  if (!state.session) throw new Friendly("Sign in to see your images.");
  const ds = Number($("#g-dataset").value);
  const version = Number($("#g-version").value);
  const seq = ++state.gallerySeq; // another choice or click makes this run stop
  const live = () => seq === state.gallerySeq;
  const gallery = $("#gallery");
  const status = $("#g-status");
  gallery.replaceChildren();
  status.textContent = "checking your grant…";
  const grants = await api(`/datasets/${ds}/grants`);
  if (!live()) return;
  const d = state.datasets.find((x) => x.id === ds);
  if (!liveGrantOf(grants)) {
    status.textContent = "";
    gallery.append(el("p", { class: "notice", "data-testid": "no-grant" },
      `Your account has no live grant on data set ${ds} (${d?.name ?? ""}). Ask its owner, ${d?.owner ?? "the institution"}, for access.`));
    announce("No live grant on this data set.");
    return;
  }
  const list = await api(`/datasets/${ds}/versions/${version}/images?limit=1000`);
  let shown = 0;
  for (const img of list.data) {
    if (!live()) return;
    status.textContent = `data set ${ds}, version ${version}: decrypting ${shown + 1} of ${list.data.length}…`;
    try {
      const url = await imageUrl(ds, version, img.index);
      if (!live()) return;
      gallery.append(thumb(img, url, `decrypted-${img.index}`));
      shown++;
    } catch (e) {
      if (e instanceof StaleResponse || !live()) return;
      if (e.status === 403 || e.status === 401) throw e; // grant gone meanwhile: one message
      gallery.append(el("figure", { class: "refused", "data-testid": `refused-${img.index}` },
        el("figcaption", {}, `${img.index} (${img.image_id}) could not be opened: ${e.message}`)));
    }
  }
  status.textContent = `data set ${ds}, version ${version}: ${shown} of ${list.data.length} image(s) decrypted`;
  announce(status.textContent);
}

function galleryChoiceChanged() {
  state.gallerySeq++;
  $("#gallery").replaceChildren();
  $("#g-status").textContent = "";
}

// --- institution: upload, jobs, API keys ---------------------------------------------------------
async function loadMethods() {
  if (state.methods.length) return;
  const list = await api("/methods");
  state.methods = list.data;
  $("#u-method").replaceChildren(...list.data.map((m) => el("option", { value: m.name }, `${m.name}: ${m.summary}`)));
  $("#u-method").value = list.data.find((m) => m.name === "dppix")?.name ?? list.data[0]?.name;
  $("#u-epsilon").min = list.min_epsilon;
  $("#u-epsilon").max = list.max_epsilon;
  $("#u-epsilon").value = list.default_epsilon;
  methodChanged();
}

function methodChanged() {
  const m = state.methods.find((x) => x.name === $("#u-method").value);
  $("#u-eps-label").hidden = !m?.takes_epsilon;
  $("#u-method-help").textContent = m
    ? `${m.kind === "generator" ? "Generates a new face" : "Rewrites the face region"}; `
      + `${m.formal_privacy ? `formal guarantee: ${m.formal_privacy}` : "no formal privacy guarantee"}; `
      + `faces it cannot take fall back to ${m.fallback}.`
    : "";
}

async function upload() {
  const name = $("#u-name").value.trim();
  if (!name) throw new Friendly("Give the data set a name.");
  const files = [...$("#u-files").files, ...$("#u-folder").files].filter((f) => !f.name.startsWith("."));
  const zip = $("#u-zip").files[0];
  if (!files.length && !zip) throw new Friendly("Choose image files, a folder or a zip to upload.");
  const m = state.methods.find((x) => x.name === $("#u-method").value);
  const params = {};
  if (m?.takes_epsilon) {
    const eps = Number($("#u-epsilon").value);
    if (!Number.isFinite(eps) || eps <= 0) throw new Friendly("ε must be a positive number.");
    params.epsilon = eps;
  }
  const form = new FormData();
  form.append("name", name);
  form.append("method", m.name);
  form.append("params", JSON.stringify(params));
  for (const field of ["description", "licence", "consent"]) {
    const text = $(`#u-${field}`).value.trim();
    if (text) form.append(field, text);
  }
  for (const f of files) form.append("files", f, f.name);
  if (zip) form.append("archive", zip, zip.name);
  const btn = $("#upload-btn");
  const bar = $("#upload-progress");
  const status = $("#upload-status");
  btn.disabled = true;
  $("#upload-result").replaceChildren();
  try {
    status.textContent = `uploading ${files.length ? `${files.length} file(s)` : zip.name}…`;
    const job = await api("/datasets", { method: "POST", form });
    bar.hidden = false;
    bar.removeAttribute("value");
    const done = await followJob(job.id, (j) => {
      status.textContent = describeJob(j);
      if (j.progress_total > 0) { bar.max = j.progress_total; bar.value = j.progress_done; }
    });
    if (done.status === "failed") throw new Friendly(`The registration failed: ${done.error}`);
    const r = done.result;
    status.textContent = `registered as data set ${r.dataset_id}, version ${r.version}`;
    announce(status.textContent);
    $("#upload-result").replaceChildren(el("dl", { class: "facts" },
      el("dt", {}, "data set"), el("dd", {}, `${r.dataset_id} (version ${r.version})`),
      el("dt", {}, "images"), el("dd", {}, r.records ?? r.record_count ?? "–"),
      el("dt", {}, "manifest"), el("dd", { class: "mono" }, r.manifest_cid ?? "–"),
      el("dt", {}, "Merkle root"), el("dd", { class: "mono" }, r.merkle_root ?? r.root ?? "–"),
      el("dt", {}, "transaction"), el("dd", { class: "mono" }, r.tx_hash ?? r.tx ?? "–")),
    el("button", { type: "button", id: "open-uploaded", onclick: action("open the data set", async () => {
      switchView("datasets");
      await loadDatasets();
      await openDataset(r.dataset_id, r.version);
    }) }, "Open its data set card"));
    await loadDatasets();
  } finally {
    btn.disabled = false;
    bar.hidden = true;
  }
}

async function loadJobs() {
  const list = await api("/jobs?limit=100");
  const body = $("#jobs tbody");
  body.replaceChildren(...list.data.map((j) => el("tr", { "data-testid": `job-${j.id}` },
    el("td", { class: "mono", title: j.id }, short(j.id, 6)), el("td", {}, j.kind),
    el("td", { class: j.status === "failed" ? "bad" : j.status === "succeeded" ? "ok" : "" }, j.status),
    el("td", {}, j.status === "succeeded" ? "done" : describeJob(j)), el("td", {}, timeEl(j.created_at)),
    el("td", {}, j.error ?? (j.result ? jobResult(j) : "–")))));
  if (!list.data.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No job yet.")));
}

function jobResult(j) {
  const r = j.result;
  if (j.kind === "verify") return `data set ${r.dataset_id} version ${r.version}: ${r.passed ? "passed" : "FAILED"}`;
  if (r.dataset_id !== undefined) return `data set ${r.dataset_id}, version ${r.version}`;
  return "done";
}

async function loadKeys() {
  const list = await api("/auth/api-keys");
  const body = $("#api-keys tbody");
  body.replaceChildren(...list.data.map((k) => el("tr", { "data-testid": `api-key-${k.id}` },
    el("td", { class: "mono" }, k.id), el("td", {}, k.name), el("td", {}, timeEl(k.created_at)),
    el("td", { class: k.revoked_at ? "bad" : "ok" }, k.revoked_at ? "revoked" : "live"),
    el("td", {}, k.revoked_at ? "" : el("button", { type: "button", onclick: action("revoke the API key", async () => {
      await api(`/auth/api-keys/${k.id}`, { method: "DELETE" });
      announce(`API key ${k.name} revoked.`);
      await loadKeys();
    }) }, "Revoke")))));
  if (!list.data.length) body.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No API key yet.")));
}

async function createKey() {
  const name = $("#k-name").value.trim();
  if (!name) throw new Friendly("Name the key after the machine that will use it.");
  const k = await api("/auth/api-keys", { method: "POST", body: { name } });
  $("#k-name").value = "";
  $("#k-new").replaceChildren(el("div", { class: "notice" },
    el("p", {}, `Key "${k.name}" created. Copy it now: it is shown only once.`),
    el("code", { class: "mono", "data-testid": "new-key-value" }, k.api_key)));
  announce("API key created; it is shown once.");
  await loadKeys();
}

// --- audit trail ------------------------------------------------------------------------------------
async function loadAudit() {
  const list = await api("/audit?limit=100");
  const body = $("#audit tbody");
  body.replaceChildren(...list.data.map((e) => el("tr", {},
    el("td", {}, e.seq), el("td", {}, timeEl(e.ts)), el("td", {}, e.event),
    el("td", { class: "mono" }, e.actor), el("td", { class: "mono" }, e.subject))));
}

// --- views and wiring -------------------------------------------------------------------------------
function switchView(name) {
  document.querySelectorAll(".tab").forEach((t) => {
    const on = t.dataset.view === name;
    t.classList.toggle("active", on);
    if (on) t.setAttribute("aria-current", "page"); else t.removeAttribute("aria-current");
  });
  document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== `view-${name}`; });
}

async function showView(name) {
  switchView(name);
  if (!state.session) return;
  if (name === "audit") await loadAudit();
  else if (name === "keys") await loadKeys();
  else if (name === "jobs") await loadJobs();
  else if (name === "upload") await loadMethods();
}

const LABELS = { audit: "read the audit trail", keys: "manage API keys", jobs: "see your jobs", upload: "upload a data set", gallery: "see your images", datasets: "list data sets" };
document.querySelectorAll(".tab").forEach((t) =>
  t.addEventListener("click", action(LABELS[t.dataset.view], () => showView(t.dataset.view))));

$("#connect-btn").addEventListener("click", action("sign in", async () => {
  const btn = $("#connect-btn");
  btn.disabled = true;
  try { await walletSignIn(); } finally { btn.disabled = false; }
}));
$("#signin").addEventListener("submit", action("sign in", async () => {
  const k = $("#key").value;
  $("#key").value = "";
  await keySignIn(k);
  $("#dev-signin").open = false;
}));
$("#signout-btn").addEventListener("click", () => signOut());
if (window.ethereum?.on) {
  window.ethereum.on("accountsChanged", (accounts) => {
    if (state.session && !sameAddress(accounts?.[0], state.session.address)) signOut("The wallet switched accounts; signed out.");
  });
}

$("#version-select").addEventListener("change", action("show the version", async () => {
  state.cardSeq++;
  state.selection = { ds: state.dataset.id, version: Number($("#version-select").value) };
  renderVerification();
  await loadVersion();
}));
$("#verify-btn").addEventListener("click", action("run a verification", () => runVerification(false)));
$("#attest-btn").addEventListener("click", action("verify and attest", () => runVerification(true)));
$("#grant-form").addEventListener("submit", action("grant access", createGrant));
$("#reencrypt-btn").addEventListener("click", action("re-encrypt the data set", reencrypt));
$("#g-dataset").addEventListener("change", () => { galleryChoiceChanged(); fillGalleryVersions(); });
$("#g-version").addEventListener("change", galleryChoiceChanged);
$("#g-load").addEventListener("click", action("see your images", async () => {
  const btn = $("#g-load");
  btn.disabled = true;
  try { await loadGallery(); } finally { btn.disabled = false; }
}));
$("#u-method").addEventListener("change", methodChanged);
$("#upload-form").addEventListener("submit", action("upload a data set", upload));
$("#jobs-refresh").addEventListener("click", action("see your jobs", loadJobs));
$("#key-form").addEventListener("submit", action("create an API key", createKey));
$("#audit-refresh").addEventListener("click", action("read the audit trail", loadAudit));
$("#audit-verify").addEventListener("click", action("verify the audit trail", async () => {
  const r = await api("/audit/verify");
  $("#audit-status").textContent = r.ok ? `hash chain intact (${r.entries} entries)` : `BROKEN at entry ${r.broken_at}: ${r.reason}`;
  $("#audit-status").className = r.ok ? "ok" : "bad";
}));
$("#audit-anchor").addEventListener("click", action("anchor the audit trail", async () => {
  const btn = $("#audit-anchor");
  btn.disabled = true;
  try {
    const r = await api("/audit/anchor", { method: "POST" });
    $("#audit-status").textContent = `anchored ${r.count} entries, root ${r.root} in transaction ${r.tx_hash}`;
    $("#audit-status").className = "ok";
  } finally { btn.disabled = false; }
  await loadAudit();
}));
$("#image-dialog-close").addEventListener("click", () => $("#image-dialog").close());

renderAccount();
action("list data sets", loadDatasets)();
