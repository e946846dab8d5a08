// alrun web annotator: labels the batch an active-learning strategy picked.
//
// Security rule for this file: everything that comes from the server (texts,
// tokens, labels, messages, session names) goes into the DOM through
// textContent / createTextNode / setAttribute / dataset only -- never as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  // ---- session & API ------------------------------------------------------

  const pageParams = new URLSearchParams(window.location.search);
  const SESSION = pageParams.get("session") || "default";
  const TOKEN = pageParams.get("token");

  const POLL_MS = 1000;
  const HEARTBEAT_MS = 10000;

  // Fixed palette by label position: [strong colour, light background].
  const PALETTE = [
    ["#2563eb", "#dbeafe"], ["#d97706", "#fef3c7"], ["#059669", "#d1fae5"],
    ["#dc2626", "#fee2e2"], ["#7c3aed", "#ede9fe"], ["#db2777", "#fce7f3"],
    ["#0891b2", "#cffafe"], ["#65a30d", "#ecfccb"], ["#ea580c", "#ffedd5"],
    ["#475569", "#e2e8f0"],
  ];
  const UNKNOWN_COLOUR = ["#6b7280", "#f3f4f6"];

  // Every API call carries session (and token, when the page got one).
  function apiUrl(path) {
    const q = new URLSearchParams({ session: SESSION });
    if (TOKEN) q.set("token", TOKEN);
    return `${path}?${q}`;
  }

  // Returns {ok, data}; never throws (network errors become ok=false).
  async function api(path, body) {
    const init = body === undefined ? { method: "GET" } : {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    };
    init.credentials = "same-origin";
    init.cache = "no-store";
    try {
      const res = await fetch(apiUrl(path), init);
      let data = null;
      try { data = await res.json(); } catch (_) { data = null; }
      if (!res.ok) {
        const msg = (data && data.error) || `${res.status} ${res.statusText}`;
        return { ok: false, data, error: String(msg) };
      }
      return { ok: true, data: data || {} };
    } catch (err) {
      return { ok: false, data: null, error: "server unreachable", network: true };
    }
  }

  // ---- state --------------------------------------------------------------

  let status = null;        // latest STATUS
  let labels = [];          // label set in use
  let task = null;          // task on screen, or null
  let selected = null;      // multiclass: chosen label
  let active = null;        // ner: active label for new spans
  let spans = [];           // ner: current spans of the task on screen
  let busy = false;         // a request that changes the task is in flight
  let pollTimer = null;
  let heartbeatTimer = null;
  let offline = false;      // the #error shown is "server unreachable"
  let mouseDownMark = null; // ner: mark under the last mousedown (click-to-remove)

  const kind = () => (task && task.kind) || (status && status.kind) || "";

  function colourOf(label) {
    const i = labels.indexOf(label);
    return i >= 0 ? PALETTE[i % PALETTE.length] : UNKNOWN_COLOUR;
  }

  function paint(el, label) {
    const [strong, light] = colourOf(label);
    el.style.setProperty("--c", strong);
    el.style.setProperty("--c-light", light);
  }

  // Shortcut key of the i-th label: 1..9, then 0, then none.
  const keyOf = (i) => (i < 9 ? String(i + 1) : i === 9 ? "0" : "");

  // ---- messages -----------------------------------------------------------

  function showError(msg) {
    const el = $("error");
    el.textContent = msg;
    el.hidden = !msg;
  }
  const clearError = () => { offline = false; showError(""); };

  // ---- status / header ----------------------------------------------------

  const fmt = (x) => (typeof x === "number" ? x.toFixed(3) : String(x));
  const fmt2 = (x) => (typeof x === "number" ? x.toFixed(2) : "?");
  const METRIC_NAMES = { f1: "F1", macro_f1: "macro-F1" };
  const metricName = (m) => METRIC_NAMES[m] || String(m);

  // Without a test split the held-out score is the evaluation sample's, with its interval:
  // "F1 0.61 [0.48, 0.72] on 50 evaluation items".
  function heldOutText(score) {
    const ev = score.eval;
    if (ev && score.heldout && score.heldout !== "test split") {
      return `${metricName(ev.metric)} ${fmt2(ev.value)} [${fmt2(ev.low)}, ${fmt2(ev.high)}]` +
        ` on ${ev.n ?? "?"} evaluation items`;
    }
    return score.test != null ? `test ${score.metric || "score"} ${fmt(score.test)}` : "";
  }

  function scoreText(score) {
    if (!score) return "no model yet";
    const metric = score.metric || "score";
    const parts = [];
    const held = heldOutText(score);
    if (held) parts.push(held);
    if (score.validation != null) parts.push(`validation ${fmt(score.validation)}`);
    if (score.agreement != null) parts.push(`agrees ${fmt(score.agreement)} with last round`);
    const team = score.annotators;
    if (team && team.value != null) {
      parts.push(`annotators ${team.metric === "f1" ? "entity F1" : "\u03b1"} ${fmt(team.value)}`);
    }
    let text = parts.join(" · ") || metric;
    const ctx = [];
    if (score.round != null) ctx.push(`round ${score.round}`);
    if (score.labeled != null) ctx.push(`${score.labeled} labels`);
    if (ctx.length) text += ` (${ctx.join(", ")})`;
    return text;
  }

  const EVAL_WHY = "held-out items for an honest learning curve: a random sample, labelled " +
    "before the rounds, never trained on (so no model suggestions here)";

  // The phase line: the evaluation set first, apart from the rounds, then the rounds.
  function renderPhase(st, b) {
    const inEval = st.phase === "eval";
    const ev = st.eval;
    let title = "";
    let why = "";
    if (inEval) {
      const total = ev ? ev.total : b.total;
      title = st.state === "labelling" || ev
        ? `evaluation set: ${ev ? ev.answered : 0} / ${total || "?"}` : "evaluation set";
      why = EVAL_WHY;
    } else if (st.state === "labelling" || st.state === "training") {
      title = `round ${st.round ?? 0}: ${b.answered || 0} / ${b.total || 0}`;
      if (ev) why = `evaluation set: ${ev.accepted} held-out items (never trained on)`;
    } else if (ev) {
      why = `evaluation set: ${ev.accepted} held-out items (never trained on)`;
    }
    $("phase-title").textContent = title;
    $("phase-why").textContent = why;
    $("phase").hidden = !title && !why;
  }

  function renderStatus(st) {
    if (!st) return;
    status = st;
    const inEval = st.phase === "eval";
    document.body.dataset.state = st.state || "";
    document.body.dataset.phase = st.phase || "";
    document.body.dataset.kind = kind();
    $("session").textContent = st.session || SESSION;
    $("role").hidden = st.role !== "reviewer";
    document.body.dataset.role = st.role || "annotator";
    document.title = `alrun · ${st.session || SESSION}`;
    $("round").textContent = inEval ? "eval" : st.round != null && st.round >= 0
      ? String(st.round) : "–";
    $("labeled").textContent = st.budget != null
      ? `${st.labeled ?? 0} / ${st.budget}` : String(st.labeled ?? 0);
    $("score").textContent = scoreText(st.score);
    $("dataset").textContent = [st.dataset, st.strategy, st.unit].filter(Boolean).join(" · ");

    const b = st.batch || { total: 0, answered: 0, accepted: 0 };
    const prog = $("progress");
    prog.max = Math.max(1, b.total || 0);
    prog.value = Math.min(b.answered || 0, prog.max);
    const where = inEval ? "the evaluation set" : `round ${st.round ?? 0}`;
    $("progress-text").textContent =
      `${b.answered || 0} / ${b.total || 0} answered in ${where} · ${b.accepted || 0} accepted` +
      (st.overlap ? ` · ${b.review || 0} to review · ${b.mine || 0} ` +
        `${st.role === "reviewer" ? "decided" : "answered"} by you (each item: ` +
        `${st.overlap} annotators)` : "");
    renderPhase(st, b);

    if (st.state === "finished") {
      $("message").textContent = `Finished. Final score: ${scoreText(st.score)}.` +
        (st.message ? ` ${st.message}` : "");
    } else {
      $("message").textContent = st.message || "";
    }

    const newLabels = Array.isArray(st.labels) ? st.labels.map(String) : [];
    if (newLabels.join("\u0000") !== labels.join("\u0000")) {
      labels = newLabels;
      if (!labels.includes(active)) active = labels[0] ?? null;
      buildLabelButtons();
      if (task && task.kind === "ner") renderNer(); // colours depend on positions
    }
    renderHelp();
  }

  // ---- label buttons ------------------------------------------------------

  function buildLabelButtons() {
    const box = $("labels");
    box.replaceChildren();
    labels.forEach((name, i) => {
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "label";
      btn.dataset.label = name;
      btn.dataset.key = keyOf(i);
      paint(btn, name);
      if (keyOf(i)) {
        const k = document.createElement("kbd");
        k.textContent = keyOf(i);
        btn.append(k);
      }
      btn.append(document.createTextNode(name));
      btn.addEventListener("click", () => chooseLabel(name));
      box.append(btn);
    });
    updateLabelClasses();
  }

  function updateLabelClasses() {
    const ner = kind() === "ner";
    const sugg = task && !ner && !task.review && task.suggestion ? task.suggestion : null;
    for (const btn of $("labels").querySelectorAll("button.label")) {
      const name = btn.dataset.label;
      btn.classList.toggle("selected", !ner && !!task && name === selected);
      btn.classList.toggle("suggested", !!sugg && name === sugg.label);
      btn.classList.toggle("active", ner && name === active);
    }
    const hint = $("suggestion");
    if (sugg) {
      hint.textContent = `model: ${sugg.label}` +
        (typeof sugg.score === "number" ? ` ${sugg.score.toFixed(2)}` : "");
      hint.hidden = false;
    } else {
      hint.textContent = "";
      hint.hidden = true;
    }
  }

  function chooseLabel(name) {
    if (kind() === "ner") active = name;
    else if (task) { selected = name; clearError(); }
    updateLabelClasses();
  }

  function renderHelp() {
    const n = Math.min(labels.length, 10);
    const keys = n === 0 ? "" : n === 1 ? "1" : n <= 9 ? `1-${n}` : "1-9, 0";
    const common = "a accept · x reject · space ignore · Backspace/u undo";
    $("help").textContent = kind() === "ner"
      ? `Keys: ${keys} active label · ${common}. Drag over tokens to mark an entity; click an entity to remove it.`
      : `Keys: ${keys} pick label · Enter/a accept · x reject · space ignore · Backspace/u undo.`;
  }

  // ---- task display -------------------------------------------------------

  function showTask(t) {
    stopPolling();
    task = t;
    const prev = t.answer || null;
    document.body.dataset.task = String(t.id);
    document.body.dataset.kind = kind();
    const what = (t.review ? "review: " : "") + (t.round === -1 ? "evaluation item" : "item");
    $("task-info").textContent = `${what} ${t.item_id ?? "?"} · task ${t.id}`;
    $("task-note").textContent = prev
      ? `previous answer: ${prev.answer}${prev.label ? ` (${prev.label})` : ""}` : "";
    renderVersions(t);
    if (t.kind === "ner") {
      // An undone task comes back with its previous spans instead of the predictions; a
      // task in review starts empty: the reviewer picks a version or marks the entities.
      const src = prev && Array.isArray(prev.spans) ? prev.spans : t.review ? [] : (t.spans || []);
      spans = copySpans(src);
      selected = null;
      renderNer();
    } else {
      selected = prev && prev.label != null ? String(prev.label) : null;
      const box = $("text");
      box.className = "text multiclass";
      box.textContent = t.text ?? "";
    }
    $("text").parentElement.classList.remove("empty");
    updateLabelClasses();
    renderHelp();
    startHeartbeat();
  }

  function copySpans(src) {
    return src.map((s) => ({
      sentence: Number(s.sentence), start: Number(s.start), end: Number(s.end),
      token_start: Number(s.token_start), token_end: Number(s.token_end), label: String(s.label),
    }));
  }

  // What one version says, as text: "accept: tech", "accept: Peter Blackburn PER, ...".
  function versionText(t, v) {
    if (v.answer !== "accept") return v.answer;
    if (t.kind !== "ner") return `accept: ${v.label}`;
    const ents = (v.spans || []).map((s) => {
      const sent = t.sentences[s.sentence] || { text: "" };
      return `${sent.text.slice(s.start, s.end)} ${s.label}`;
    });
    return `accept: ${ents.length ? ents.join(", ") : "no entities"}`;
  }

  // A task in review: one button per version (who said it, what); a click loads it.
  function renderVersions(t) {
    const list = $("version-list");
    list.replaceChildren();
    const versions = Array.isArray(t.versions) ? t.versions : [];
    $("versions").hidden = versions.length === 0;
    versions.forEach((v, i) => {
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "version";
      btn.dataset.version = String(i);
      btn.dataset.sessions = (v.sessions || []).join(",");
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = (v.sessions || []).join(", ");
      btn.append(who, document.createTextNode(versionText(t, v)));
      btn.addEventListener("click", () => pickVersion(v, btn));
      list.append(btn);
    });
  }

  function pickVersion(v, btn) {
    if (!task) return;
    for (const b of $("version-list").querySelectorAll("button.version")) {
      b.classList.toggle("chosen", b === btn);
    }
    if (task.kind === "ner") {
      spans = copySpans(v.answer === "accept" ? v.spans || [] : []);
      renderNer();
    } else {
      selected = v.label != null ? String(v.label) : null;
      updateLabelClasses();
    }
    clearError();
  }

  function showNoTask() {
    task = null;
    $("versions").hidden = true;
    $("version-list").replaceChildren();
    spans = [];
    selected = null;
    document.body.dataset.task = "";
    $("task-info").textContent = "";
    $("task-note").textContent = "";
    const box = $("text");
    box.className = "text";
    box.textContent = "";
    box.parentElement.classList.add("empty");
    updateLabelClasses();
    stopHeartbeat();
  }

  // The sentence's own text between tokens (double spaces, newlines, tabs), shown as it is
  // in the file; a task whose token offsets do not match its text falls back to ws.
  function gapsOf(sent) {
    const toks = sent.tokens || [];
    const text = typeof sent.text === "string" ? sent.text : null;
    const exact = text !== null && toks.every((t, i) =>
      Number.isInteger(t.start) && Number.isInteger(t.end) && t.start <= t.end &&
      text.slice(t.start, t.end) === String(t.text) &&
      (i === 0 || toks[i - 1].end <= t.start));
    if (!exact) return { before: "", after: toks.map((t) => (t.ws ? " " : "")) };
    const after = toks.map((t, i) => text.slice(t.end, i + 1 < toks.length ? toks[i + 1].start : text.length));
    return { before: toks.length ? text.slice(0, toks[0].start) : text, after };
  }

  // Tokens as <span class="tok">, entity spans wrapped in <mark class="ent">.
  function renderNer() {
    const box = $("text");
    box.className = "text ner";
    box.replaceChildren();
    (task.sentences || []).forEach((sent, si) => box.append(sentenceEl(sent, si)));
  }

  function sentenceEl(sent, si) {
    const div = document.createElement("div");
    div.className = "sentence";
    div.dataset.s = String(si);
    const toks = sent.tokens || [];
    const gaps = gapsOf(sent);
    const mine = spans.filter((s) => s.sentence === si)
      .sort((a, b) => a.token_start - b.token_start);
    const tokEl = (i) => {
      const el = document.createElement("span");
      el.className = "tok";
      el.dataset.s = String(si);
      el.dataset.t = String(i);
      el.textContent = toks[i].text;
      return el;
    };
    const gap = (i) => (gaps.after[i] ? [document.createTextNode(gaps.after[i])] : []);
    if (gaps.before) div.append(document.createTextNode(gaps.before));
    let k = 0;
    for (const sp of mine) {
      if (sp.token_start < k || sp.token_end >= toks.length) continue; // malformed/overlap
      for (; k < sp.token_start; k++) div.append(tokEl(k), ...gap(k));
      const mark = markEl(sp, si);
      for (; k <= sp.token_end; k++) mark.append(tokEl(k), ...(k < sp.token_end ? gap(k) : []));
      const tag = document.createElement("span");
      tag.className = "ent-label";
      tag.textContent = sp.label;
      mark.append(tag);
      div.append(mark, ...gap(sp.token_end));
    }
    for (; k < toks.length; k++) div.append(tokEl(k), ...gap(k));
    return div;
  }

  function markEl(sp, si) {
    const mark = document.createElement("mark");
    mark.className = "ent";
    mark.dataset.s = String(si);
    mark.dataset.start = String(sp.start);
    mark.dataset.end = String(sp.end);
    mark.dataset.tokenStart = String(sp.token_start);
    mark.dataset.tokenEnd = String(sp.token_end);
    mark.dataset.label = sp.label;
    mark.title = `${sp.label} (click to remove)`;
    paint(mark, sp.label);
    return mark;
  }

  // ---- NER mouse selection ------------------------------------------------

  // True when the range covers at least one character of the token element
  // (a range merely touching a token's edge does not count). This is what makes
  // selections snap to whole tokens whatever node the browser put the ends in
  // (spaces between tokens, entity tags, sentence blocks).
  function coversToken(range, el) {
    if (!range.intersectsNode(el)) return false;
    const r = document.createRange();
    r.selectNodeContents(el);
    if (range.compareBoundaryPoints(Range.START_TO_START, r) > 0) {
      r.setStart(range.startContainer, range.startOffset);
    }
    if (range.compareBoundaryPoints(Range.END_TO_END, r) < 0) {
      r.setEnd(range.endContainer, range.endOffset);
    }
    return r.toString().trim().length > 0;
  }

  function onMouseDown(e) {
    mouseDownMark = e.target instanceof Element ? e.target.closest("#text mark.ent") : null;
  }

  function onMouseUp(e) {
    if (!task || task.kind !== "ner" || busy) return;
    const box = $("text");
    const sel = window.getSelection();
    if (!sel || sel.rangeCount === 0 || sel.isCollapsed) {
      // A plain click (no drag): on an entity it removes it, elsewhere nothing.
      const mark = e.target instanceof Element ? e.target.closest("#text mark.ent") : null;
      if (mark && mark === mouseDownMark) removeSpan(mark);
      mouseDownMark = null;
      return;
    }
    mouseDownMark = null;
    const range = sel.getRangeAt(0);
    if (!box.contains(range.startContainer) || !box.contains(range.endContainer)) return;
    // A double-click selects the browser's word ("BBC's" is two tokens): take the token
    // under the pointer instead.
    const clicked = e.detail === 2 && e.target instanceof Element
      ? e.target.closest("#text span.tok") : null;
    const hit = clicked ? [clicked]
      : [...box.querySelectorAll("span.tok")].filter((el) => coversToken(range, el));
    sel.removeAllRanges();
    if (hit.length === 0) return;
    const first = hit[0];
    const last = hit[hit.length - 1];
    if (first.dataset.s !== last.dataset.s) {
      showError("an entity cannot cross sentences: select tokens within one sentence");
      return;
    }
    if (!active) { showError("no label to assign"); return; }
    const si = Number(first.dataset.s);
    const t0 = Math.min(Number(first.dataset.t), Number(last.dataset.t));
    const t1 = Math.max(Number(first.dataset.t), Number(last.dataset.t));
    const toks = task.sentences[si].tokens;
    const span = { sentence: si, start: toks[t0].start, end: toks[t1].end,
      token_start: t0, token_end: t1, label: active };
    // The new span replaces every span it overlaps.
    spans = spans.filter((s) => s.sentence !== si || s.token_end < t0 || s.token_start > t1);
    spans.push(span);
    spans.sort((a, b) => a.sentence - b.sentence || a.token_start - b.token_start);
    clearError();
    renderNer();
  }

  function removeSpan(mark) {
    const si = Number(mark.dataset.s);
    const t0 = Number(mark.dataset.tokenStart);
    const t1 = Number(mark.dataset.tokenEnd);
    spans = spans.filter((s) => !(s.sentence === si && s.token_start === t0 && s.token_end === t1));
    clearError();
    renderNer();
  }

  // ---- actions ------------------------------------------------------------

  async function answer(kindOfAnswer) {
    if (!task || busy) return;
    const body = { id: task.id, answer: kindOfAnswer };
    if (task.kind === "ner") {
      body.spans = spans.map((s) => ({ ...s }));
    } else if (kindOfAnswer === "accept") {
      if (!selected) {
        const n = Math.min(labels.length, 10);
        showError(`pick a label first (keys 1-${n === 10 ? 0 : n})`);
        return;
      }
      body.label = selected;
    }
    busy = true;
    const res = await api("/api/answer", body);
    if (!res.ok) {
      busy = false;
      showError(res.error);
      if (res.data && res.data.status) renderStatus(res.data.status);
      return;
    }
    clearError();
    renderStatus(res.data.status);
    await loadNext(); // releases busy
  }

  async function undo() {
    if (busy) return;
    busy = true;
    const res = await api("/api/undo", {});
    busy = false;
    if (!res.ok) {
      showError(res.error);
      if (res.data && res.data.status) renderStatus(res.data.status);
      return;
    }
    clearError();
    renderStatus(res.data.status);
    if (res.data.task) showTask(res.data.task);
  }

  // Fetch the next task; with none, wait (poll status) until there is one.
  async function loadNext() {
    busy = true;
    const res = await api("/api/next");
    busy = false;
    if (!res.ok) {
      showError(res.error);
      offline = !!res.network;
      showNoTask();
      schedulePoll();
      return;
    }
    if (offline) clearError();
    renderStatus(res.data.status);
    if (res.data.task) {
      showTask(res.data.task);
    } else {
      showNoTask();
      if (!status || status.state !== "finished") schedulePoll();
    }
  }

  // ---- polling & heartbeat ------------------------------------------------

  function schedulePoll() {
    stopPolling();
    pollTimer = setTimeout(pollOnce, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = null;
  }

  async function pollOnce() {
    pollTimer = null;
    if (task) return; // a task arrived meanwhile (e.g. through undo)
    if (busy) { schedulePoll(); return; }
    const res = await api("/api/status");
    if (task) return;
    if (busy) { schedulePoll(); return; }
    if (!res.ok) {
      // Keep trying; only this kind of error is cleared when the server is back.
      if (res.network) { offline = true; showError("server unreachable, retrying…"); }
      schedulePoll();
      return;
    }
    if (offline) clearError();
    const st = res.data;
    const b = st.batch || {};
    // With open tasks, /api/next answers with its own (more precise) status.
    if (st.state === "labelling" && (b.answered || 0) < (b.total || 0)) { await loadNext(); return; }
    renderStatus(st);
    if (st.state !== "finished") schedulePoll(); // finished: stop polling for good
  }

  function startHeartbeat() {
    stopHeartbeat();
    heartbeatTimer = setInterval(() => { if (task) api("/api/heartbeat", {}); }, HEARTBEAT_MS);
  }

  function stopHeartbeat() {
    if (heartbeatTimer) clearInterval(heartbeatTimer);
    heartbeatTimer = null;
  }

  // ---- keyboard -----------------------------------------------------------

  function onKeyDown(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.target;
    if (target instanceof HTMLElement &&
        (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    // Enter/space on a button focused with Tab keep their usual meaning (press it).
    if (target instanceof HTMLButtonElement && (e.key === "Enter" || e.key === " ")) return;

    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    let handled = true;
    if (/^[0-9]$/.test(key)) {
      const i = key === "0" ? 9 : Number(key) - 1;
      if (i < labels.length) chooseLabel(labels[i]);
    } else if (e.repeat && ["a", "x", " ", "Enter", "u", "Backspace"].includes(key)) {
      // Holding a key down must not answer a run of tasks.
    } else if (key === "a" || (key === "Enter" && kind() === "multiclass")) {
      answer("accept");
    } else if (key === "x") {
      answer("reject");
    } else if (key === " ") {
      answer("ignore");
    } else if (key === "u" || key === "Backspace") {
      undo();
    } else {
      handled = false;
    }
    if (handled) e.preventDefault(); // also stops space from scrolling
  }

  // ---- wiring -------------------------------------------------------------

  function init() {
    $("session").textContent = SESSION;
    document.title = `alrun · ${SESSION}`;
    $("accept").addEventListener("click", () => answer("accept"));
    $("reject").addEventListener("click", () => answer("reject"));
    $("ignore").addEventListener("click", () => answer("ignore"));
    $("undo").addEventListener("click", () => undo());
    // Buttons must not keep focus after a mouse click, or a later space/Enter
    // would press them again instead of acting as a shortcut.
    document.addEventListener("mousedown", (e) => {
      if (e.target instanceof Element && e.target.closest("button")) e.preventDefault();
    });
    document.addEventListener("keydown", onKeyDown);
    const box = $("text");
    box.addEventListener("mousedown", onMouseDown);
    // On document, so a drag that ends outside #text is still seen.
    document.addEventListener("mouseup", onMouseUp);
    window.addEventListener("pagehide", () => {
      if (navigator.sendBeacon) {
        navigator.sendBeacon(apiUrl("/api/release"), new Blob(["{}"], { type: "application/json" }));
      }
    });
    showNoTask();
    renderHelp();
    loadNext();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
