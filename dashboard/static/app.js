// The dashboard page: fetches one JSON route per panel and draws it; refetches when the server says a file
// changed (server-sent events on /api/events), or every `refresh` seconds when the stream is unavailable.
// Every value from the server is put on the page as text (textContent), never as markup.
"use strict";

const STRATEGY_COLORS = ["#2463eb", "#e4572e", "#17becf", "#76b041", "#9467bd", "#ffb400", "#8c564b", "#e377c2"];
const PORTFOLIO_NAMES = { allocated: "allocated (RL / bridge)", equal_weight: "equal weights",
  portfolio_optimizer: "portfolio optimizer", strategy_lab: "strategy lab" };
const ACTION_STYLE = { HOLD: ["#7f8c8d", "circle"], LONG: ["#1b7f3b", "triangle-up"],
  SHORT: ["#c0392b", "triangle-down"], REDUCE: ["#b26a00", "diamond"], CLOSE: ["#2463eb", "square"],
  EMERGENCY_FLATTEN: ["#000000", "x"] };
const PLOT_CONFIG = { displayModeBar: false, responsive: true };
const state = { refreshS: 2, tradesPage: 1, tradesSize: 10, busy: false, again: false, polling: null };

// ------------------------------------------------------------------------------------------- building blocks

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A message from the server, with `commands` in backticks shown as code.
function message(text, cls) {
  const parts = String(text).split("`");
  return el("p", { class: cls || "empty" }, parts.map((part, i) => (i % 2 ? el("code", {}, part) : part)));
}

function num(value, digits = 2) {
  return typeof value === "number" && isFinite(value)
    ? value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "-";
}
function pct(value, digits = 1) {
  return typeof value === "number" && isFinite(value) ? `${(100 * value).toFixed(digits)} %` : "-";
}
function age(seconds) {
  if (typeof seconds !== "number" || !isFinite(seconds)) return "-";
  const s = Math.max(0, seconds);
  if (s < 120) return `${s.toFixed(0)} s`;
  if (s < 7200) return `${(s / 60).toFixed(0)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}
function text(value) { return value === null || value === undefined || value === "" ? "-" : String(value); }
function badge(label, kind) { return el("span", { class: `badge ${kind || ""}` }, label); }

// columns: [{label, num?, wrap?}], rows: arrays of cells (text or nodes); options: rowAttrs(i), foot (cells).
function table(columns, rows, options = {}) {
  const head = el("thead", {}, el("tr", {}, columns.map(c => el("th", { class: c.num ? "num" : null }, c.label))));
  const body = el("tbody", {}, rows.map((cells, i) => el("tr", options.rowAttrs ? options.rowAttrs(i) : {},
    cells.map((cell, j) => el("td", { class: columns[j].num ? "num" : columns[j].wrap ? "wrap" : null }, cell)))));
  const parts = [head, body];
  if (options.foot) {
    parts.push(el("tfoot", {}, el("tr", {}, options.foot.map((cell, j) =>
      el("td", { class: columns[j].num ? "num" : null }, cell)))));
  }
  return el("div", { class: "table-wrap" }, el("table", options.id ? { id: options.id } : {}, parts));
}

function kv(pairs) {
  return el("dl", { class: "kv" }, pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function chartBox(id, small) { return el("div", { id, class: small ? "chart small" : "chart" }); }

function draw(node, traces, layout) {
  const base = { margin: { l: 50, r: 12, t: 10, b: 36 }, legend: { orientation: "h", y: -0.18 },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { size: 11 } };
  window.Plotly.react(node, traces, Object.assign(base, layout || {}), PLOT_CONFIG);
}

// Replace a panel's body with `nodes`, then draw its charts (they need to be in the page first).
function fill(name, panelState, nodes, charts) {
  const panel = document.getElementById(`panel-${name}`);
  const body = panel.querySelector(".body");
  const keep = {};
  for (const chart of body.querySelectorAll(".chart")) keep[chart.id] = chart;  // reuse: no flicker on updates
  const fresh = nodes.map(node => {
    if (node.classList && node.classList.contains("chart") && keep[node.id]) {
      const kept = keep[node.id];
      delete keep[node.id];
      return kept;
    }
    return node;
  });
  for (const dropped of Object.values(keep)) window.Plotly.purge(dropped);  // its listeners go with it
  body.replaceChildren(...fresh);
  panel.dataset.state = panelState;
  for (const [id, traces, layout] of charts || []) draw(document.getElementById(id), traces, layout);
}

function emptyPanel(name, data) { fill(name, "empty", [message(data.message)]); }

// ------------------------------------------------------------------------------------------- panels

function renderHealth(data) {
  if (data.empty) return emptyPanel("health", data);
  const rows = data.daemons.map(d => [
    d.name,
    badge(d.stale ? "STALE" : d.state, d.stale || d.flagged ? "bad" : d.running ? "ok" : "warn"),
    d.running ? `pid ${d.pid}` : "stopped",
    age(d.uptime_s), age(d.heartbeat_age_s), text(d.supervisor_state), String(d.restarts),
    text(d.last_exit), text(d.degraded_reason || d.last_error),
  ]);
  fill("health", "ready", [
    el("p", {}, `${data.running} of ${data.daemons.length} running; ${data.flagged} flagged; supervisor `,
      data.supervisor_pid ? `running (pid ${data.supervisor_pid})` : "not running",
      `; a heartbeat older than ${age(data.stale_after_s)} is stale.`),
    table([{ label: "daemon" }, { label: "state" }, { label: "process" }, { label: "uptime", num: true },
      { label: "heartbeat age", num: true }, { label: "supervisor" }, { label: "restarts", num: true },
      { label: "last exit" }, { label: "last error", wrap: true }], rows,
    { id: "health-table", rowAttrs: i => ({ class: data.daemons[i].flagged ? "flagged" : null,
      "data-daemon": data.daemons[i].name }) }),
  ]);
}

function renderLoop(data) {
  const sources = data.sources || [];
  const sourceRows = sources.map(s => [s.source, badge(s.status, s.status === "ok" ? "ok" : "warn"), age(s.age_s),
    text(s.reason)]);
  const sourceTable = table([{ label: "source file" }, { label: "now" }, { label: "age", num: true },
    { label: "reason", wrap: true }], sourceRows);
  if (data.empty) return fill("loop", "empty", [message(data.message), el("h3", {}, "Sources"), sourceTable]);
  const max = Math.max(...data.weights.map(w => w.weight), 1e-9);
  const rows = data.weights.map(w => [w.strategy, num(w.weight, 4),
    el("div", { class: "bar" }, barFill(w.weight / max))]);
  const passed = data.passed_over.length
    ? table([{ label: "passed over" }, { label: "why", wrap: true }], data.passed_over.map(p => [p.source, p.reason]))
    : el("p", {}, "No source was passed over: the first in priority order (RL > optimizer > lab > equal) won.");
  const ages = Object.entries(data.input_ages_s || {}).map(([k, v]) => `${k} ${age(v)}`).join(", ");
  fill("loop", "ready", [
    kv([["source in force", badge(data.source, "info")], ["published", `${text(data.generated_at)} (${age(data.allocation.age_s)} ago)`],
      ["input ages at the last change", ages || "-"]]),
    table([{ label: "strategy" }, { label: "weight", num: true }, { label: "" }], rows,
      { id: "loop-weights", rowAttrs: i => ({ "data-strategy": data.weights[i].strategy,
        "data-weight": data.weights[i].weight }), foot: ["sum", num(data.weights_sum, 4), ""] }),
    el("h3", {}, "Why the others were passed over"), passed,
    el("h3", {}, "Sources now"), sourceTable,
  ]);
}

function barFill(share) {
  const span = el("span");
  span.style.width = `${Math.max(0, Math.min(1, share)) * 100}%`;
  return span;
}

function renderTrader(data) {
  if (data.empty) return emptyPanel("trader", data);
  const s = data.status;
  const summary = s ? kv([["mode", `${text(s.mode)} (${text(s.data_source)}, ${text(s.symbol)} ${text(s.timeframe)})`],
    ["equity", `${num(s.equity)} (start ${num(s.initial_equity)})`], ["cash", num(s.cash)],
    ["last candle", text(data.last_candle)], ["trades written", text(s.trades_written)],
    ["status age", age(data.status_age_s)]]) : message(data.status_message);
  const nodes = [summary];
  const charts = [];
  if (data.trades === 0) {
    nodes.push(message(data.no_trades_message));
  } else {
    nodes.push(chartBox("chart-equity"));
    charts.push(["chart-equity", [
      { x: data.curve.time, y: data.curve.equity, name: "equity", type: "scatter", mode: "lines",
        line: { color: "#2463eb" } },
      { x: data.curve.time, y: data.curve.drawdown.map(v => 100 * v), name: "drawdown %", type: "scatter",
        mode: "lines", fill: "tozeroy", yaxis: "y2", line: { color: "#c0392b", width: 1 } },
    ], { yaxis: { domain: [0.38, 1], title: { text: "equity" } },
      yaxis2: { domain: [0, 0.3], title: { text: "drawdown %" } }, showlegend: false }]);
  }
  nodes.push(el("h3", {}, "Open positions"));
  nodes.push(data.positions.length ? table([{ label: "strategy" }, { label: "side" }, { label: "qty", num: true },
    { label: "entry", num: true }, { label: "opened" }, { label: "weight", num: true }, { label: "unrealized", num: true }],
  data.positions.map(p => [p.strategy, p.side, num(p.qty, 4), num(p.entry_price), text(p.opened_at),
    num(p.weight, 3), num(p.unrealized_pnl)])) : el("p", {}, "No open position."));
  if (data.strategies.length) {
    nodes.push(el("h3", {}, "P&L per strategy"));
    nodes.push(table([{ label: "strategy" }, { label: "trades", num: true }, { label: "P&L", num: true },
      { label: "mean return", num: true }, { label: "win rate", num: true }],
    data.strategies.map(r => [r.strategy, String(r.trades), num(r.pnl), pct(r.mean_pnl_pct, 2), pct(r.win_rate, 0)]),
    { id: "strategy-pnl" }));
  }
  if (data.skipped_rows) nodes.push(el("p", { class: "error" }, `${data.skipped_rows} malformed row(s) skipped in ${data.history_file}`));
  fill("trader", "ready", nodes, charts);
}

function renderTrades(data) {
  document.getElementById("trades-page").textContent = `page ${data.page} of ${data.pages} (${data.total} trades)`;
  document.getElementById("trades-prev").disabled = data.page <= 1;
  document.getElementById("trades-next").disabled = data.page >= data.pages;
  state.tradesPage = data.page;
  if (data.empty) return emptyPanel("trades", data);
  fill("trades", "ready", [table([{ label: "closed" }, { label: "strategy" }, { label: "side" },
    { label: "qty", num: true }, { label: "entry", num: true }, { label: "exit", num: true }, { label: "P&L", num: true },
    { label: "return", num: true }, { label: "fees", num: true }, { label: "equity after", num: true }],
  data.rows.map(t => [text(t.closed_at), t.strategy, t.side, num(t.qty, 4), num(t.entry_price), num(t.exit_price),
    num(t.pnl), pct(t.pnl_pct, 2), num(t.fees), num(t.equity_after)]), { id: "trades-table" })]);
}

function renderPerformance(data) {
  const nodes = [el("h3", {}, "Weights over time")];
  const charts = [];
  const w = data.weights_over_time;
  if (w.empty) nodes.push(message(w.message));
  else {
    nodes.push(chartBox("chart-weights"));
    const traces = Object.entries(w.weights).map(([name, ys], i) => ({ x: w.time, y: ys, name, type: "scatter",
      mode: "lines", stackgroup: "weights", line: { width: 0.5, color: STRATEGY_COLORS[i % 8] },
      text: w.source, hovertemplate: `${name} %{y:.3f}<br>source %{text}<extra></extra>` }));
    charts.push(["chart-weights", traces, { yaxis: { range: [0, 1], title: { text: "weight" } } }]);
    nodes.push(el("p", {}, `${w.records} record(s) of ${w.file} (${w.time_basis} time)` +
      (w.skipped ? `, ${w.skipped} skipped` : "")));
  }
  nodes.push(el("h3", {}, "Performance report: RL vs equal weights vs optimizer vs lab"));
  const r = data.report;
  if (r.empty) nodes.push(message(r.message));
  else {
    if (r.curves) {
      nodes.push(chartBox("chart-portfolios"));
      charts.push(["chart-portfolios", r.portfolios.map((name, i) => ({ x: r.curves.time, y: r.curves.equity[name],
        name: PORTFOLIO_NAMES[name] || name, type: "scatter", mode: "lines",
        line: { width: name === "allocated" ? 2.5 : 1.5, color: ["#2463eb", "#7f8c8d", "#e4572e", "#76b041"][i] } })),
      { yaxis: { title: { text: "equity (from 1)" } } }]);
    } else nodes.push(message("not enough data for equity curves yet: they need two days of closed trades"));
    const rows = r.metrics.map(m => m.portfolio === null
      ? [m.window, "-", el("span", { class: "empty-inline" }, text(m.reason)), "", "", "", "", "", ""]
      : [m.window, PORTFOLIO_NAMES[m.portfolio] || m.portfolio, pct(m.total_return), num(m.sharpe_ratio),
        num(m.sortino_ratio), pct(m.max_drawdown), pct(m.annual_volatility), pct(m.win_rate, 0), num(m.turnover)]);
    nodes.push(table([{ label: "window" }, { label: "portfolio" }, { label: "return", num: true },
      { label: "Sharpe", num: true }, { label: "Sortino", num: true }, { label: "max drawdown", num: true },
      { label: "volatility", num: true }, { label: "win rate", num: true }, { label: "turnover", num: true }], rows,
    { id: "metrics-table" }));
    nodes.push(el("p", {}, `report as of ${text(r.as_of)}, written ${text(r.generated_at)}`));
  }
  fill("performance", w.empty && r.empty ? "empty" : "ready", nodes, charts);
}

function renderStrategyAgent(data) {
  const sch = data.schedule || {};
  const cron = sch.cron ? `${sch.cron.next_run} (${sch.cron.key} = ${sch.cron.cron})` : "-";
  const trigger = sch.error ? sch.error
    : `${sch.new_trades} new trade(s) of ${sch.retrain_after_new_trades} needed (${sch.trades_now} now)`;
  const schedule = kv([["next scheduled training", cron], ["new-trades trigger", trigger],
    ["retrain due", sch.due_now ? badge(`yes: ${sch.due_now}`, "warn") : badge("no", "ok")]]);
  if (data.empty) return fill("strategy-agent", "empty", [message(data.message), el("h3", {}, "Retraining"), schedule]);
  const m = data.model;
  const last = data.last;
  const nodes = [m ? kv([["model version", badge(`v${m.version}`, "info")], ["trained", text(m.trained_at)],
    ["episodes / steps", `${text(m.episodes)} / ${text(m.total_steps)}`],
    ["training data", m.training_data ? `${text(m.training_data.start)} .. ${text(m.training_data.end)}, ${text(m.training_data.trades)} trades` : "-"],
    ["RL weights published", data.published.status === "ok" ? `${age(data.published.age_s)} ago (model ${text(data.published.model_version)})` : text(data.published.reason)]])
    : message(data.model_message)];
  if (last) {
    nodes.push(el("h3", {}, "Last training"));
    const hm = last.holdout_model || {}; const he = last.holdout_equal_weights || {};
    nodes.push(kv([["finished", text(last.finished_at)], ["trigger", text(last.trigger)],
      ["result", last.promoted ? badge("promoted", "ok") : badge(last.completed ? "kept the old model" : "incomplete", "warn")],
      ["validation", text(last.reason)],
      ["held-out Sharpe", `${num(hm.sharpe)} (equal weights ${num(he.sharpe)}) over ${text(last.holdout_periods)} period(s)`]]));
    nodes.push(table([{ label: "finished" }, { label: "version", num: true }, { label: "trades", num: true },
      { label: "promoted" }, { label: "held-out Sharpe", num: true }], data.trainings.map(t => [text(t.finished_at),
      text(t.model_version), text(t.trades), t.promoted ? "yes" : "no", num((t.holdout_model || {}).sharpe)])));
  }
  nodes.push(el("h3", {}, "Retraining"), schedule);
  fill("strategy-agent", "ready", nodes);
}

function renderTradingAgent(data) {
  const nodes = [];
  const charts = [];
  if (data.empty) nodes.push(message(data.message));
  else {
    const s = data.status || {};
    const p = data.progress;
    nodes.push(kv([["mode", s.shadow_mode ? badge("shadow", "info") : badge("live", "warn")],
      ["model", s.model_loaded ? `trained ${text(s.trained_at)}` : text(s.model_error || "not loaded")],
      ["experiences", text(s.experiences_collected)],
      ["waiting", text(s.daemon && s.daemon.waiting)],
      ["next retraining", text(s.daemon && s.daemon.next_retrain_at)]]));
    nodes.push(el("h3", {}, "Training progress"));
    if (p) {
      const bar = el("progress", { class: "progress", max: "100", value: String(p.progress || 0) });
      const mt = p.metrics || {};
      nodes.push(bar, kv([["progress", `${num(p.progress, 1)} % ${p.active ? "(training)" : ""}`],
        ["episode", `${text(p.episodes_done)} of ${text(p.episodes_total)}`],
        ["steps", `${text(p.steps_done)} of ${text(p.steps_total)}`],
        ["losses", `policy ${num(mt.policy_loss, 4)}, value ${num(mt.value_loss, 4)}`], ["", text(p.message)]]));
    } else nodes.push(message("no training has run yet: `python ai/shadow_ppo.py train`"));
    nodes.push(el("h3", {}, "Shadow decisions"));
    const d = data.decisions;
    if (d.empty) nodes.push(message(d.message));
    else {
      nodes.push(chartBox("chart-decisions"));
      const traces = [{ x: d.time, y: d.close, name: "close", type: "scatter", mode: "lines",
        line: { color: "#95a5a6", width: 1.2 }, hoverinfo: "x+y" }];
      for (const action of [...new Set(d.action)]) {
        const idx = d.action.map((a, i) => (a === action ? i : -1)).filter(i => i >= 0);
        const [color, symbol] = ACTION_STYLE[action] || ["#333", "circle"];
        traces.push({ x: idx.map(i => d.time[i]), y: idx.map(i => d.close[i]), name: action, type: "scatter",
          mode: "markers", marker: { color, symbol, size: idx.map(i => 5 + 12 * (d.confidence[i] || 0)) },
          text: idx.map(i => `confidence ${num(d.confidence[i], 2)}, exposure ${num(d.exposure[i], 2)}`),
          hovertemplate: `${action} %{y:.2f}<br>%{text}<extra></extra>` });
      }
      charts.push(["chart-decisions", traces, { yaxis: { title: { text: "price" } } }]);
    }
  }
  const ro = data.rollout || {};
  nodes.push(el("h3", {}, "Rollout"));
  const guard = ro.risk_guard || {};
  nodes.push(kv([["stage", text(ro.stage)], ["capital share", `${num(ro.capital_percentage, 1)} %`],
    ["risk guard", !ro.configured ? "-" : !guard.enabled ? "disabled"
      : guard.tripped ? badge(`tripped: ${text(guard.tripped.reason)}`, "bad")
        : guard.trip !== undefined ? `daily loss ${num(guard.daily_loss_pct)} %, drawdown ${num(guard.drawdown_pct)} %` : "armed"]]));
  nodes.push(el("h3", {}, "Benchmark (out of sample)"));
  const b = data.benchmark;
  if (b.empty) nodes.push(message(b.message));
  else {
    nodes.push(table([{ label: "strategy" }, { label: "return", num: true }, { label: "Sharpe", num: true },
      { label: "max drawdown", num: true }, { label: "win rate", num: true }, { label: "trades", num: true }],
    b.rows.map(r => [r.name, pct(r.total_return), num(r.sharpe_ratio), pct(r.max_drawdown), pct(r.win_rate, 0),
      text(r.n_trades)]), { id: "benchmark-table" }));
    nodes.push(el("p", {}, "gate: ", badge(b.gate_passed ? "passed" : "not passed", b.gate_passed ? "ok" : "bad"),
      " ", b.gate.map(g => `${g.criterion} ${g.passed ? "✓" : "✗"}`).join(", ")));
  }
  fill("trading-agent", data.empty ? "empty" : "ready", nodes, charts);
}

function renderQlearning(data) {
  if (data.empty) {
    return fill("qlearning", "empty", [message(data.message),
      kv([["learning daemon", `${data.daemon.running ? "running" : "not running"} (${data.daemon.detail})`]])]);
  }
  const names = Object.keys(data.agents);
  const row = (label, f) => [label, ...names.map(n => f(data.agents[n]))];
  const nodes = [
    kv([["learning daemon", `${data.daemon.running ? "running" : "not running"} (${data.daemon.detail})`],
      ["sizing in force", data.policy ? `x${num(data.policy.sizing_multiplier, 2)} (${data.policy.apply_sizing ? "applied" : "not applied: qlearning.apply_sizing = false"})` : "-"]]),
    el("h3", {}, "Health checks"),
    el("ul", { id: "qlearning-health" }, data.health.map(h => el("li", {}, badge(h.status, h.status), " ", h.message))),
    el("h3", {}, "Agents"),
    table([{ label: "" }, ...names.map(n => ({ label: n, num: true }))], [
      row("states", a => text(a.states)), row("state-action pairs", a => text(a.pairs)),
      row("updates", a => text(a.updates)), row("stage", a => text(a.stage)),
      row("epsilon", a => num(a.epsilon, 4)), row("alpha / gamma", a => `${text(a.alpha)} / ${text(a.gamma)}`),
      row("table size", a => `${num((a.size_bytes || 0) / 1024, 1)} KB`),
      row("reward mean ± sd", a => `${num(a.reward_mean, 3)} ± ${num(a.reward_std, 3)}`)]),
  ];
  const charts = [];
  const rr = data.recent_rewards;
  nodes.push(el("h3", {}, "Recent rewards (meta agent, per trade)"));
  if (rr.reward.length) {
    nodes.push(chartBox("chart-rewards", true));
    charts.push(["chart-rewards", [{ x: rr.reward.map((_, i) => i + 1), y: rr.reward, type: "bar",
      customdata: rr.strategy, marker: { color: rr.reward.map(v => (v >= 0 ? "#1b7f3b" : "#c0392b")) },
      hovertemplate: "%{customdata}: %{y:.3f}<extra></extra>" }], { xaxis: { title: { text: "trade (oldest to newest)" } } }]);
  } else nodes.push(message("no trades of the 8 strategies yet"));
  nodes.push(el("h3", {}, "Tuning advice"));
  const adv = data.advice;
  if (adv.error) nodes.push(message(adv.error, "error"));
  else {
    for (const rec of adv.agents) {
      const changes = Object.entries(rec.changes);
      nodes.push(el("p", {}, el("strong", {}, `${rec.agent} (${rec.stage}): `),
        changes.length ? changes.map(([k, v]) => `${k} ${rec.current[k].toPrecision(3)} → ${v}`).join(", ") : "current values fit its stage"));
      if (rec.rationale.length) nodes.push(el("ul", {}, rec.rationale.map(line => el("li", {}, line))));
    }
    const flags = adv.agents.flatMap(r => Object.entries(r.changes).map(([k, v]) => `--${r.agent}-${k} ${v}`));
    if (flags.length) nodes.push(message(`apply with \`python scripts/tune_qlearning.py --apply ${flags.join(" ")}\``, ""));
  }
  fill("qlearning", "ready", nodes, charts);
}

// ------------------------------------------------------------------------------------------- fetching

const RENDERERS = {
  health: renderHealth, loop: renderLoop, trader: renderTrader, performance: renderPerformance,
  "strategy-agent": renderStrategyAgent, "trading-agent": renderTradingAgent, qlearning: renderQlearning,
};

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

async function loadPanel(name, url, render) {
  try {
    render(await getJSON(url));
  } catch (error) {
    const panel = document.getElementById(`panel-${name}`);
    panel.dataset.state = "error";
    panel.querySelector(".body").replaceChildren(message(`cannot load ${url}: ${error.message}`, "error"));
  }
}

async function refresh() {
  if (state.busy) { state.again = true; return; }
  state.busy = true;
  try {
    await Promise.all([
      ...Object.entries(RENDERERS).map(([name, render]) => loadPanel(name, `/api/${name}`, render)),
      loadTrades(),
    ]);
    document.getElementById("updated").textContent = new Date().toLocaleTimeString();
  } finally {
    state.busy = false;
    if (state.again) { state.again = false; refresh(); }
  }
}

function setLive(mode) {
  const node = document.getElementById("live");
  node.dataset.state = mode;
  node.textContent = mode === "live" ? "live" : mode === "polling" ? `polling every ${state.refreshS} s` : mode;
}

function startPolling() {
  if (state.polling === null) state.polling = window.setInterval(refresh, state.refreshS * 1000);
  setLive("polling");
}

function listen() {
  if (!window.EventSource) return startPolling();
  const source = new EventSource("/api/events");
  source.addEventListener("change", refresh);
  source.addEventListener("tick", refresh);
  source.onopen = () => {
    if (state.polling !== null) { window.clearInterval(state.polling); state.polling = null; }
    setLive("live");
  };
  source.onerror = () => startPolling();  // EventSource reconnects by itself; poll meanwhile
}

function loadTrades() {
  return loadPanel("trades", `/api/trades?page=${state.tradesPage}&size=${state.tradesSize}`, renderTrades);
}

function setUpPager() {
  document.getElementById("trades-prev").addEventListener("click", () => { state.tradesPage -= 1; loadTrades(); });
  document.getElementById("trades-next").addEventListener("click", () => { state.tradesPage += 1; loadTrades(); });
  document.getElementById("trades-size").addEventListener("change", event => {
    state.tradesSize = Number(event.target.value); state.tradesPage = 1; loadTrades();
  });
}

async function start() {
  try {
    state.refreshS = (await getJSON("/api/meta")).refresh_s || state.refreshS;
  } catch (error) { /* the panels say what failed */ }
  setUpPager();
  await refresh();
  listen();
}

document.addEventListener("DOMContentLoaded", start);
