// The minigpt web app: a playground, a chat view and the runs dashboard, over the same API
// any client uses (/v1/... with streaming, /api/runs). Plain JavaScript, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563"];
const state = { models: [], runTimer: null, openRuns: [], abort: null };

// -- requests ---------------------------------------------------------------------------------

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = localStorage.getItem("minigpt-api-key");
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

async function api(path, body, signal) {
  const response = await fetch(path, {
    method: body ? "POST" : "GET", headers: headers(), signal,
    body: body ? JSON.stringify(body) : undefined,
  });
  if (response.status === 401) askKey();
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error.message; } catch (e) { /* not JSON */ }
    throw new Error(`${response.status}: ${message}`);
  }
  return response;
}

// Server-sent events from a POST: yields each parsed `data:` JSON until [DONE].
async function* events(path, body, signal) {
  const response = await api(path, body, signal);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const line = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 2);
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      if (data === "[DONE]") return;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      yield chunk;
    }
  }
}

function askKey() {
  const key = prompt("This server needs an API key (sent as Authorization: Bearer KEY):");
  if (key !== null) { localStorage.setItem("minigpt-api-key", key); location.reload(); }
}

function status(text, error) {
  $("status").textContent = text || "";
  $("status").className = error ? "error" : "muted";
}

// -- views ------------------------------------------------------------------------------------

function show(view) {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.classList.toggle("active", tab.dataset.view === view);
  }
  for (const section of document.querySelectorAll(".view")) {
    section.hidden = section.id !== "view-" + view;
  }
  location.hash = view;
  clearInterval(state.runTimer);
  if (view === "runs") loadRuns();
  if (view === "chat") chatNote();
}

async function loadModels() {
  const info = await (await api("/api/info")).json();
  state.models = info.models;
  for (const select of document.querySelectorAll(".model-select")) {
    select.innerHTML = "";
    for (const m of info.models) {
      const option = document.createElement("option");
      option.value = m.id;
      option.textContent = `${m.id} (${(m.parameters / 1e6).toFixed(2)}M, block ${m.block_size})`;
      select.appendChild(option);
    }
  }
  if (!info.models.length) $("pg-stats").textContent = "no model is served: start minigpt serve RUN";
  $("tab-runs").hidden = !info.runs;
}

// -- playground -------------------------------------------------------------------------------

function number(id) {
  const v = $(id).value;
  return v === "" ? null : Number(v);
}

async function generate() {
  const out = $("output");
  const prompt = $("prompt").value;
  out.innerHTML = "";
  const shown = document.createElement("span");
  shown.className = "prompt";
  shown.textContent = prompt;
  out.appendChild(shown);
  const body = {
    model: $("pg-model").value, prompt, stream: true, logprobs: 0,
    temperature: number("pg-temperature"), top_k: number("pg-top-k"),
    top_p: number("pg-top-p"), max_tokens: number("pg-max-tokens"),
  };
  const seed = number("pg-seed");
  if (seed !== null) body.seed = seed;
  state.abort = new AbortController();
  $("generate").disabled = true;
  $("stop").disabled = false;
  const start = performance.now();
  let first = null, count = 0, finish = "";
  try {
    for await (const chunk of events("/v1/completions", body, state.abort.signal)) {
      const choice = chunk.choices[0];
      if (!choice) continue;
      const lp = choice.logprobs;
      if (lp && lp.tokens.length) {
        count += lp.tokens.length;
        first = first || performance.now();
      }
      if (choice.text) {
        // One box per token where the chunk's tokens spell its text (a busy server may send
        // several tokens in one chunk); else one box for the chunk.
        const tokens = lp && lp.tokens.join("") === choice.text ? lp.tokens : [choice.text];
        tokens.forEach((text, i) => {
          const span = document.createElement("span");
          span.className = "tok";
          span.textContent = text;
          if (tokens.length === lp?.tokens.length) {
            const p = Math.exp(lp.token_logprobs[i]);
            span.title = `token ${JSON.stringify(text)}  logprob ${lp.token_logprobs[i].toFixed(3)}  p=${p.toFixed(3)}`;
          }
          out.appendChild(span);
        });
      }
      if (choice.finish_reason) finish = choice.finish_reason;
      const seconds = (performance.now() - (first || start)) / 1000;
      $("pg-stats").textContent = `${count} tokens, ${(count / Math.max(seconds, 1e-3)).toFixed(1)} tok/s` +
        (first ? `, first token after ${((first - start) / 1000).toFixed(2)} s` : "") +
        (finish ? `, finished: ${finish}` : "");
    }
  } catch (e) {
    if (e.name !== "AbortError") status(e.message, true);
  } finally {
    $("generate").disabled = false;
    $("stop").disabled = true;
  }
  showPromptTokens(prompt);
}

async function showPromptTokens(text) {
  const target = $("pg-prompt-tokens");
  target.innerHTML = "";
  if (!text) return;
  try {
    const { tokens } = await (await api("/api/tokenize", { model: $("pg-model").value, text })).json();
    target.append(`The prompt is ${tokens.length} tokens: `);
    for (const t of tokens) {
      const span = document.createElement("span");
      span.className = "tok";
      span.textContent = t.text;
      span.title = `token id ${t.id}`;
      target.appendChild(span);
    }
  } catch (e) { /* the counts are a nicety */ }
}

// -- chat -------------------------------------------------------------------------------------

const chat = { messages: [] };

function chatNote() {
  const m = state.models.find((x) => x.id === $("chat-model").value);
  $("chat-note").textContent = m && !m.chat_template
    ? "This model has no chat template: messages are sent as plain text turns (User: ... / Assistant: ...), so it continues a dialogue-shaped document."
    : "";
}

function bubble(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  $("chat-log").appendChild(div);
  return div;
}

async function send() {
  const text = $("chat-input").value.trim();
  if (!text) return;
  $("chat-input").value = "";
  chat.messages.push({ role: "user", content: text });
  bubble("user", text);
  const reply = bubble("assistant", "");
  let content = "";
  $("chat-send").disabled = true;
  try {
    const body = {
      model: $("chat-model").value, messages: chat.messages, stream: true,
      temperature: number("chat-temperature"), max_tokens: number("chat-max-tokens"),
    };
    for await (const chunk of events("/v1/chat/completions", body)) {
      const choice = chunk.choices[0];
      if (choice && choice.delta && choice.delta.content) {
        content += choice.delta.content;
        reply.textContent = content;
      }
    }
    chat.messages.push({ role: "assistant", content });
  } catch (e) {
    reply.textContent = e.message;
    reply.classList.add("error");
  } finally {
    $("chat-send").disabled = false;
  }
}

// -- runs -------------------------------------------------------------------------------------

async function loadRuns() {
  let runs;
  try { runs = (await (await api("/api/runs")).json()).runs; } catch (e) { status(e.message, true); return; }
  const list = $("run-list");
  list.innerHTML = "";
  runs.sort((a, b) => b.modified - a.modified);
  for (const run of runs) {
    const li = document.createElement("li");
    li.className = "run-item";
    li.dataset.run = run.id;
    const box = document.createElement("input");
    box.type = "checkbox";
    box.addEventListener("click", (e) => { e.stopPropagation(); compareButton(); });
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = run.id;
    const loss = document.createElement("span");
    loss.className = "loss";
    const last = run.last_eval ? run.last_eval.val : run.last_train ? run.last_train.loss : null;
    loss.textContent = last != null ? last.toFixed(3) : "";
    li.append(box, name, loss);
    li.addEventListener("click", () => openRuns([run.id]));
    list.appendChild(li);
  }
  if (!runs.length) list.innerHTML = '<li class="muted">no runs yet</li>';
  if (state.openRuns.length) openRuns(state.openRuns);
}

function compareButton() {
  const ticked = document.querySelectorAll(".run-item input:checked");
  $("compare").disabled = ticked.length < 2;
}

async function openRuns(ids) {
  state.openRuns = ids;
  clearInterval(state.runTimer);
  for (const li of document.querySelectorAll(".run-item")) {
    li.classList.toggle("active", ids.includes(li.dataset.run));
  }
  await refreshRuns();
  state.runTimer = setInterval(refreshRuns, 3000); // live curves while a run trains
}

async function refreshRuns() {
  const ids = state.openRuns;
  let runs;
  try {
    runs = await Promise.all(ids.map(async (id) =>
      (await api("/api/runs/" + id.split("/").map(encodeURIComponent).join("/"))).json()));
  } catch (e) { status(e.message, true); return; }
  $("run-empty").hidden = true;
  $("run-body").hidden = false;
  $("run-title").textContent = ids.join("  vs  ");
  const series = [];
  runs.forEach((run, i) => {
    const color = COLORS[i % COLORS.length];
    const prefix = runs.length > 1 ? run.id + " " : "";
    series.push({ label: prefix + "train", color, points: run.train.map((r) => [r.iter, r.loss]) });
    series.push({ label: prefix + "val", color: runs.length > 1 ? color : COLORS[1], dashed: true,
      points: run.evals.map((r) => [r.iter, r.val]) });
  });
  drawChart($("run-chart"), series, { xLabel: "iteration", empty: "no metrics.jsonl yet" });
  $("run-evals").innerHTML = evalTable(runs);
  const single = runs.length === 1 ? runs[0] : null;
  $("run-single").hidden = !single; // config, checkpoints and samples: one run at a time
  if (!single) return;
  $("run-config").textContent = single.config || "(no config.toml)";
  $("run-samples").textContent = single.samples || "(no samples.txt)";
  $("run-checkpoints").innerHTML = checkpointTable(single.checkpoints);
}

function cell(v, digits) { return v == null ? "" : typeof v === "number" ? v.toFixed(digits) : String(v); }

function evalTable(runs) {
  const rows = runs.map((run) => {
    const e = run.evals.length ? run.evals[run.evals.length - 1] : {};
    const best = run.evals.length ? Math.min(...run.evals.map((r) => r.val)) : null;
    return `<tr><td>${escapeHtml(run.id)}</td><td>${cell(e.iter, 0)}</td><td>${cell(e.train, 4)}</td>` +
      `<td>${cell(e.val, 4)}</td><td>${cell(e.val_ppl, 2)}</td><td>${cell(e.val_bpb, 3)}</td><td>${cell(best, 4)}</td></tr>`;
  });
  return "<h3>Evaluations (latest)</h3><table><tr><th>run</th><th>iter</th><th>train loss</th>" +
    "<th>val loss</th><th>perplexity</th><th>bits/byte</th><th>best val</th></tr>" + rows.join("") + "</table>";
}

function checkpointTable(items) {
  if (!items.length) return '<p class="muted">none</p>';
  return "<table><tr><th>checkpoint</th><th>iter</th><th>val loss</th><th>MB</th></tr>" +
    items.map((c) => `<tr><td>${escapeHtml(c.name)}</td><td>${cell(c.iteration, 0)}</td>` +
      `<td>${cell(c.val_loss, 4)}</td><td>${(c.bytes / 1e6).toFixed(1)}</td></tr>`).join("") + "</table>";
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// -- start ------------------------------------------------------------------------------------

window.addEventListener("DOMContentLoaded", async () => {
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => show(tab.dataset.view));
  $("generate").addEventListener("click", generate);
  $("stop").addEventListener("click", () => state.abort && state.abort.abort());
  $("prompt").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) generate(); });
  $("chat-send").addEventListener("click", send);
  $("chat-input").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); } });
  $("chat-reset").addEventListener("click", () => { chat.messages = []; $("chat-log").innerHTML = ""; });
  $("chat-model").addEventListener("change", chatNote);
  $("compare").addEventListener("click", () =>
    openRuns([...document.querySelectorAll(".run-item input:checked")].map((b) => b.closest("li").dataset.run)));
  $("key-button").addEventListener("click", askKey);
  try { await loadModels(); } catch (e) { status(e.message, true); }
  const start = location.hash.slice(1);
  show(["playground", "chat", "runs"].includes(start) ? start : state.models.length ? "playground" : "runs");
});
