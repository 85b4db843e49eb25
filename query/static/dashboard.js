// The dashboard: calls, errors and p95 over time, and the top resources and clients, from
// GET /reports/api-logs/stats, redrawn on its own every REFRESH_S seconds while it is on screen.
import { getJson } from "./api.js";
import { $, h, say } from "./dom.js";
import * as charts from "./charts.js";
import { dateTime, getTz, number } from "./format.js";
import { getLang, t } from "./i18n.js";

export const REFRESH_S = 30;
let timer = null;

function bucketLabel(start, size) {
  const text = dateTime(start);
  return size === "hour" ? text.slice(-5) : text.slice(0, getLang() === "pt" ? 5 : 10);
}

/** The API lists only buckets with calls: add the empty ones of the window, so time reads evenly. */
function filled(series, size, since) {
  if (!series.length) return series;
  const step = (size === "hour" ? 1 : 24) * 3600 * 1000;
  const known = new Map(series.map((s) => [Date.parse(s.start), s]));
  let at = Date.parse(series[0].start);
  while (at - step >= since - step) at -= step;
  const out = [];
  for (; at <= Date.now(); at += step) {
    out.push(known.get(at) || { start: new Date(at).toISOString(), count: 0, errors: 0, p95_ms: 0 });
  }
  return out;
}

function card(label, value) {
  return h("div", { className: "card" }, h("span", {}, label), h("b", {}, value));
}

/** Fetch the figures for the chosen window and draw them. */
export async function refresh() {
  const hours = Number($("#dash-window").value);
  const since = new Date(Date.now() - hours * 3600 * 1000).toISOString();
  const p = new URLSearchParams({ from: since, tz: getTz(), lang: getLang(), bucket: hours <= 48 ? "hour" : "day" });
  let stats;
  try { stats = await getJson(`/reports/api-logs/stats?${p}`); } catch (e) { say($("#dash-msg"), e.message, true); return; }
  const rate = stats.total ? (100 * stats.errors) / stats.total : 0;
  $("#dash-cards").replaceChildren(card(t("dash.calls"), number(stats.total)), card(t("dash.errors"), number(stats.errors)),
    card(t("dash.errorRate"), `${number(rate, 1)}%`), card(t("dash.p50"), number(stats.duration_ms.p50, 1)),
    card(t("dash.p95"), number(stats.duration_ms.p95, 1)),
    ...Object.entries(stats.by_status_class).map(([cls, n]) => card(cls, number(n))));
  const size = stats.buckets.size, series = filled(stats.buckets.series, size, Date.parse(since));
  const points = (pick) => series.map((s) => ({ x: bucketLabel(s.start, size), values: pick(s) }));
  const fmt = (v) => number(v, 0);
  if (!series.length) {
    ["#chart-calls", "#chart-p95", "#chart-resources", "#chart-clients"].forEach((id) => charts.empty($(id), t("dash.empty")));
  } else {
    charts.lines($("#chart-calls"), { label: t("dash.overTime"), points: points((s) => [s.count, s.errors]), format: fmt,
      series: [{ name: t("dash.calls"), className: "s-calls" }, { name: t("dash.errors"), className: "s-errors" }] });
    charts.lines($("#chart-p95"), { label: t("dash.p95OverTime"), points: points((s) => [s.p95_ms]), format: (v) => number(v, 1),
      series: [{ name: t("dash.p95"), className: "s-p95" }] });
    charts.bars($("#chart-resources"), { label: t("dash.resources"), format: fmt,
      items: stats.by_resource.slice(0, 10).map((r) => ({ label: r.resource || "—", value: r.count, hint: `${t("dash.errors")}: ${number(r.errors)}` })) });
    charts.bars($("#chart-clients"), { label: t("dash.clients"), format: fmt,
      items: stats.top_clients.map((c) => ({ label: `${c.client_name || c.client_id || "—"}${c.client_username ? ` (${c.client_username})` : ""}`,
        value: c.count, hint: c.client_id })) });
  }
  const now = new Intl.DateTimeFormat(getLang() === "pt" ? "pt-BR" : "en-GB", { timeZone: getTz(), timeStyle: "medium" }).format(new Date());
  say($("#dash-msg"), t("dash.updated", { time: now, s: REFRESH_S }));
}

/** Start (visible) or stop (hidden) the automatic refresh. */
export function active(on) {
  clearInterval(timer); timer = null;
  if (on) { refresh(); timer = setInterval(refresh, REFRESH_S * 1000); }
}

export function setup() {
  $("#dash-window").addEventListener("change", refresh);
  $("#dash-refresh").addEventListener("click", refresh);
}
