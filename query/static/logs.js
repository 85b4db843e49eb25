// The "Registros de API" screen, as the seed shows it: the top bar (filters, refresh, actions, print,
// CSV, schedule), the ten search fields, the fifteen columns on one line each (long values cut, the
// full text on hover), page forward and back, and a row opening the whole record.
import { call, download } from "./api.js";
import { $, $$, h, say } from "./dom.js";
import * as fields from "./fields.js";
import { apiDate, getTz, readDate, writeDate as writeDateFor } from "./format.js";
import { getLang, t } from "./i18n.js";
import * as record from "./record.js";

const DATE_FIELDS = ["from", "until"];
let cursors = [null];  // cursors[i] opens page i (page 0 needs none)
let pageIndex = 0;
let searched = null;   // the parameters of the search being paged, fixed when it started
let onSchedule = () => {};
let onNavigate = () => {};
let loads = 0;         // finished loads, for whoever waits for the table (tests, assistive tools)

/** The search as the API takes it: typed dates read in the language's format and sent as
 * DD/MM/AAAA HH:MM, so "até 08:55" includes 08:55:59. Throws with the field's name if a date is wrong. */
export function searchParams() {
  const p = new URLSearchParams();
  for (const [key, raw] of new FormData($("#filters"))) {
    const value = String(raw).trim();
    if (!value) continue;
    if (DATE_FIELDS.includes(key)) {
      const typed = readDate(value);
      if (!typed) throw new Error(t("date.bad", { field: fields.filterLabel(key) }));
      p.set(key, apiDate(typed));
    } else p.set(key, value);
  }
  p.set("tz", getTz());
  p.set("lang", getLang());
  return p;
}

/** The filters a schedule keeps (no dates: its period comes from its range). */
export function scheduleFilters() {
  const out = {};
  for (const [key, value] of searchParams()) if (!["from", "until", "tz", "lang"].includes(key)) out[key] = value;
  return out;
}

function header() {
  const cols = fields.columns();
  $("#logs-table colgroup").replaceChildren(...cols.map((f) => h("col", { className: `col-${f.key}` })));
  $("#logs-table thead").replaceChildren(h("tr", {}, cols.map((f) => h("th", { scope: "col", title: fields.columnLabel(f) }, fields.columnLabel(f)))));
}

function render(rows) {
  header();
  const cols = fields.columns();
  $("#logs-table tbody").replaceChildren(...rows.map((row) => {
    const tr = h("tr", { tabIndex: 0, dataset: { queryId: row.query_id, timestamp: row.timestamp },
      "aria-label": `${row.query_id}` },
    cols.map((f) => { const text = fields.cell(f, row);
      return h("td", { title: text || null, className: f.kind === "duration" ? "num" : null }, text); }));
    return tr;
  }));
}

async function load() {
  const msg = $("#logs-msg");
  say(msg, t("rows.loading"));
  try {
    const p = new URLSearchParams(searched);
    if (cursors[pageIndex]) p.set("cursor", cursors[pageIndex]);
    const page = await (await call(`/reports/api-logs?${p}`)).json();
    render(page.rows);
    cursors[pageIndex + 1] = page.next_cursor;
    $("#prev").disabled = pageIndex === 0;
    $("#next").disabled = !page.next_cursor;
    $("#page-label").textContent = t("page.label", { n: pageIndex + 1 });
    say(msg, page.rows.length ? t("rows.count", { n: page.rows.length }) : t("rows.none"));
  } catch (e) { say(msg, e.message, true); }
  $("#logs-table").dataset.loads = String(++loads);
}

/** A new search from the filters (page 1). */
export async function search() {
  try { searched = searchParams().toString(); } catch (e) { say($("#logs-msg"), e.message, true); return; }
  cursors = [null]; pageIndex = 0;
  await load();
}

async function exportCsv() {
  try {
    const name = await download(`/reports/api-logs.csv?${searchParams()}`, "registros-de-api.csv");
    say($("#logs-msg"), t("csv.done", { name }));
  } catch (e) { say($("#logs-msg"), e.message, true); }
}

async function printView() {
  const target = window.open("", "_blank");  // opened now, inside the click, so no popup blocker stops it
  try {
    const html = await (await call(`/reports/api-logs/print?${searchParams()}`)).blob();
    const url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
    if (target) target.location = url; else window.open(url, "_blank");
    say($("#logs-msg"), t("print.opened"));
  } catch (e) { if (target) target.close(); say($("#logs-msg"), e.message, true); }
}

function toggleMenu(open) {
  const menu = $("#actions-menu");
  menu.hidden = !open;
  $("#actions").setAttribute("aria-expanded", String(open));
  if (open) menu.querySelector("button").focus();
}

function act(action) {
  toggleMenu(false);
  if (action === "print") printView();
  else if (action === "csv") exportCsv();
  else if (action === "schedule") onSchedule();
  else if (action === "clear") { $("#filters").reset(); search(); }
  else onNavigate(action);
}

/** Relabel after a language switch; typed dates are rewritten in the new language's format. */
export function relabel() {
  $$("[data-filter]").forEach((el) => { el.textContent = fields.filterLabel(el.dataset.filter); });
  $$("#filters [data-date]").forEach((input) => { const typed = readDate(input.value); if (typed) input.value = writeDateFor(typed); });
  if (searched !== null) { const p = new URLSearchParams(searched); p.set("lang", getLang()); searched = p.toString(); }
}


export function setup({ schedule, navigate }) {
  onSchedule = schedule; onNavigate = navigate;
  header();
  relabel();
  $("#filters").addEventListener("submit", (e) => { e.preventDefault(); search(); });
  $("#filters").addEventListener("reset", () => setTimeout(() => say($("#logs-msg"), ""), 0));
  $("#refresh").addEventListener("click", () => (searched === null ? search() : load()));
  $("#toggle-filters").addEventListener("click", () => {
    const form = $("#filters"); form.hidden = !form.hidden;
    $("#toggle-filters").setAttribute("aria-expanded", String(!form.hidden));
  });
  $("#prev").addEventListener("click", () => { if (pageIndex > 0) { pageIndex -= 1; load(); } });
  $("#next").addEventListener("click", () => { if (cursors[pageIndex + 1]) { pageIndex += 1; load(); } });
  $("#print").addEventListener("click", printView);
  $("#csv").addEventListener("click", exportCsv);
  $("#schedule").addEventListener("click", () => onSchedule());
  $("#actions").addEventListener("click", () => toggleMenu($("#actions-menu").hidden));
  $("#actions-menu").addEventListener("click", (e) => { const b = e.target.closest("[data-action]"); if (b) act(b.dataset.action); });
  $("#actions-menu").addEventListener("keydown", (e) => {
    const items = $$("#actions-menu button"), at = items.indexOf(document.activeElement);
    if (e.key === "Escape") { toggleMenu(false); $("#actions").focus(); }
    if (e.key === "ArrowDown") { e.preventDefault(); items[(at + 1) % items.length].focus(); }
    if (e.key === "ArrowUp") { e.preventDefault(); items[(at - 1 + items.length) % items.length].focus(); }
  });
  document.addEventListener("click", (e) => { if (!e.target.closest(".menu-wrap")) toggleMenu(false); });
  const tbody = $("#logs-table tbody");
  const openRow = (tr) => tr && record.open(tr.dataset.queryId, tr.dataset.timestamp);
  tbody.addEventListener("click", (e) => openRow(e.target.closest("tr")));
  tbody.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openRow(e.target.closest("tr")); } });
}
