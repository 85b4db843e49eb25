// The Events API screen: a QueryId (with an optional date), `q` or Tags; the answer as a table whose
// rows open the whole record, and paging with the answer's Cursor (forward and back).
import { sendJson } from "./api.js";
import { $, h, say } from "./dom.js";
import * as fields from "./fields.js";
import { dateTime, number, readDate } from "./format.js";
import { t } from "./i18n.js";
import * as record from "./record.js";

let request = null;   // the search being paged
let cursors = [null];
let pageIndex = 0;
let shown = [];
let loads = 0;

function tags(text) {
  const out = {};
  for (const item of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const at = item.indexOf("=");
    if (at < 1) throw new Error(t("events.tagsBad"));
    out[item.slice(0, at).trim()] = item.slice(at + 1).trim();
  }
  return out;
}

function build() {
  const f = Object.fromEntries(new FormData($("#events-form")));
  const body = {};
  if (f.QueryId.trim()) body.QueryId = f.QueryId.trim();
  else {
    if (f.q.trim()) body.q = f.q.trim();
    if (f.Tags.trim()) body.Tags = tags(f.Tags);
    if (f.PageSize) body.PageSize = Number(f.PageSize);
  }
  if (!body.QueryId && !body.q && !body.Tags) throw new Error(t("events.needOne"));
  if (f.QueryDate.trim()) {
    const typed = readDate(f.QueryDate);
    if (!typed) throw new Error(t("date.bad", { field: t("events.queryDate") }));
    body.QueryDate = `${typed.y}-${String(typed.m).padStart(2, "0")}-${String(typed.d).padStart(2, "0")}`;
    body.DateFormat = "yyyy-MM-dd";
  }
  return body;
}

const COLUMNS = [["query_id", () => t("col.queryId")], ["timestamp", "timestamp"], ["client_name", "client_name"],
  ["resource", "resource"], ["status", "status"], ["duration_ms", "duration_ms"], ["q", () => t("col.q")], ["tags", () => t("col.tags")]];

function label(key, source) {
  if (typeof source === "function") return source();
  const field = fields.columns().find((f) => f.key === source);
  return field ? fields.columnLabel(field) : key;
}

function value(key, rec) {
  const field = fields.columns().find((f) => f.key === key);
  if (field && key !== "query_id") return fields.cell(field, rec);
  if (key === "tags") return Object.entries(rec.tags || {}).map(([k, v]) => `${k}=${v}`).join(", ");
  return rec[key] == null ? "" : String(rec[key]);
}

function render(records) {
  shown = records;
  $("#events-table thead").replaceChildren(h("tr", {}, COLUMNS.map(([key, src]) => h("th", { scope: "col" }, label(key, src)))));
  $("#events-table tbody").replaceChildren(...records.map((rec, n) => h("tr", { tabIndex: 0, dataset: { n } },
    COLUMNS.map(([key]) => { const text = value(key, rec); return h("td", { title: text || null }, text); }))));
}

async function load() {
  const msg = $("#events-msg");
  try {
    const body = { ...request };
    if (cursors[pageIndex]) body.Cursor = cursors[pageIndex];
    const answer = await sendJson("/events", "POST", body);
    render(answer.Result || []);
    cursors[pageIndex + 1] = answer.Cursor || null;
    $("#events-prev").disabled = pageIndex === 0;
    $("#events-next").disabled = !answer.Cursor;
    $("#events-page").textContent = t("page.label", { n: pageIndex + 1 });
    say(msg, t("events.found", { n: number((answer.Result || []).length) }));
  } catch (e) { render([]); say(msg, e.message, true); }
  $("#events-table").dataset.loads = String(++loads);
}

export async function search() {
  try { request = build(); } catch (e) { say($("#events-msg"), e.message, true); return; }
  cursors = [null]; pageIndex = 0;
  await load();
}

export function relabel() { if (shown.length) render(shown); }

export function setup() {
  $("#events-form").addEventListener("submit", (e) => { e.preventDefault(); search(); });
  $("#events-prev").addEventListener("click", () => { if (pageIndex > 0) { pageIndex -= 1; load(); } });
  $("#events-next").addEventListener("click", () => { if (cursors[pageIndex + 1]) { pageIndex += 1; load(); } });
  const tbody = $("#events-table tbody");
  const open = (tr) => tr && record.show(shown[Number(tr.dataset.n)]);
  tbody.addEventListener("click", (e) => open(e.target.closest("tr")));
  tbody.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(e.target.closest("tr")); } });
}
