// Scheduled reports ("Agendar relatório"): the list, the form that creates and edits, delete, and each
// schedule's run history with the delivered file's download.
import { call, download, getJson, sendJson } from "./api.js";
import { $, $$, h, say } from "./dom.js";
import { dateTime, day, getTz, number } from "./format.js";
import { t } from "./i18n.js";
import * as fields from "./fields.js";

let editing = null;       // the schedule being edited, or null for a new one
let pendingFilters = {};  // the report filters a new schedule takes
let shownRuns = null;     // the schedule whose history is open

const form = () => $("#schedule-form");

function describeRule(rule) {
  const when = rule.frequency === "weekly" ? `, ${t(`weekday.${rule.weekday}`)}`
    : rule.frequency === "monthly" ? `, ${rule.day}` : "";
  return `${t(`schedule.${rule.frequency}`)}${when}, ${rule.time} (${rule.timezone})`;
}

function describeDestination(dest) { return dest.type === "directory" ? dest.path || "." : dest.url; }

function describeFilters(filters) {
  const items = Object.entries(filters || {});
  return items.length ? items.map(([k, v]) => `${fields.filterLabel(k)}: ${v}`).join("; ") : "—";
}

function showWhen() {
  const frequency = form().elements.frequency.value;
  $$("[data-when]", form()).forEach((el) => { el.hidden = el.dataset.when !== frequency; });
}

/** Open the form: a new schedule with the report's current filters, or `schedule` to edit. */
export function openForm(filters = {}, schedule = null) {
  editing = schedule; pendingFilters = schedule ? schedule.filters : filters;
  const f = form().elements;
  form().reset();
  $("#schedule-title").textContent = t(schedule ? "schedule.edit" : "schedule.title");
  if (schedule) {
    f.name.value = schedule.name || ""; f.frequency.value = schedule.recurrence.frequency;
    f.time.value = schedule.recurrence.time; f.range.value = schedule.range;
    if (schedule.recurrence.weekday != null) f.weekday.value = String(schedule.recurrence.weekday);
    if (schedule.recurrence.day != null) f.day.value = String(schedule.recurrence.day);
    f.kind.value = schedule.destination.type; f.target.value = describeDestination(schedule.destination);
  }
  $("#schedule-filters").textContent = describeFilters(pendingFilters);
  say($("#schedule-msg"), "");
  showWhen();
  $("#schedule-dialog").showModal();
  f.name.focus();
}

function body() {
  const f = Object.fromEntries(new FormData(form()));
  const recurrence = { frequency: f.frequency, time: f.time.trim(),
    timezone: editing ? editing.recurrence.timezone : getTz() };
  if (f.frequency === "weekly") recurrence.weekday = Number(f.weekday);
  if (f.frequency === "monthly") recurrence.day = Number(f.day);
  const destination = f.kind === "webhook" ? { type: "webhook", url: f.target.trim() }
    : { type: "directory", path: f.target.trim() };
  const out = { name: f.name.trim(), filters: pendingFilters, recurrence, range: f.range, format: "csv", destination };
  if (editing) { out.lang = editing.lang; out.csv = editing.csv; }
  return out;
}

async function save(e) {
  e.preventDefault();
  try {
    if (editing) await sendJson(`/reports/schedules/${editing.id}`, "PUT", body());
    else await sendJson("/reports/schedules", "POST", body());
    $("#schedule-dialog").close();
    say($("#sched-msg"), t("schedule.saved"));
    say($("#logs-msg"), t("schedule.saved"));
    await list();
  } catch (err) { say($("#schedule-msg"), err.message, true); }
}

function actions(schedule) {
  return h("td", { className: "actions" },
    h("button", { type: "button", dataset: { act: "history", id: schedule.id } }, t("schedule.history")),
    h("button", { type: "button", dataset: { act: "edit", id: schedule.id } }, t("schedule.editButton")),
    h("button", { type: "button", className: "danger", dataset: { act: "delete", id: schedule.id } }, t("schedule.delete")));
}

let known = [];

/** Load and show the company's schedules. */
export async function list() {
  try {
    known = (await getJson("/reports/schedules")).schedules;
  } catch (e) { say($("#sched-msg"), e.message, true); return; }
  const heads = ["schedule.name", "schedule.frequency", "schedule.range", "schedule.destination", "schedule.filters",
    "schedule.next", "schedule.last", "schedule.actions"];
  $("#sched-table thead").replaceChildren(h("tr", {}, heads.map((k) => h("th", { scope: "col" }, t(k)))));
  $("#sched-table tbody").replaceChildren(...known.map((s) => h("tr", { dataset: { id: s.id } },
    h("td", {}, s.name || s.id.slice(0, 8)), h("td", {}, describeRule(s.recurrence)), h("td", {}, t(`schedule.${s.range}`)),
    h("td", {}, describeDestination(s.destination)), h("td", {}, describeFilters(s.filters)),
    h("td", {}, dateTime(s.next_run_at)),
    h("td", {}, s.last_run ? `${dateTime(s.last_run.scheduled_for)} — ${t(`run.${s.last_run.status}`)}` : "—"),
    actions(s))));
  if (!known.length) say($("#sched-msg"), t("schedule.none"));
  if (shownRuns && known.some((s) => s.id === shownRuns.id)) await history(shownRuns);
  else { $("#runs").hidden = true; shownRuns = null; }
}

function period(run) {
  const last = new Date(new Date(run.period.until).getTime() - 1);
  const first = day(run.period.from), end = day(last.toISOString());
  return first === end ? first : `${first} – ${end}`;
}

/** Show the run history of `schedule`. */
export async function history(schedule) {
  shownRuns = schedule;
  let runs;
  try { runs = (await getJson(`/reports/schedules/${schedule.id}/runs`)).runs; } catch (e) { say($("#sched-msg"), e.message, true); return; }
  $("#runs-title").textContent = t("runs.title", { name: schedule.name || schedule.id.slice(0, 8) });
  const heads = ["runs.when", "runs.period", "runs.status", "runs.rows", "runs.where", "runs.error", "runs.file"];
  $("#runs-table thead").replaceChildren(h("tr", {}, heads.map((k) => h("th", { scope: "col" }, t(k)))));
  const rows = runs.map((run) => h("tr", {},
    h("td", {}, dateTime(run.scheduled_for)), h("td", {}, period(run)), h("td", { className: `run-${run.status}` }, t(`run.${run.status}`)),
    h("td", { className: "num" }, number(run.rows)), h("td", {}, run.destination || "—"), h("td", {}, run.error || ""),
    h("td", {}, run.download ? h("button", { type: "button", dataset: { download: run.download } }, t("runs.download")) : "")));
  $("#runs-table tbody").replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colSpan: 7 }, t("runs.none")))]));
  $("#runs").hidden = false;
}

async function remove(schedule) {
  if (!window.confirm(t("schedule.confirm", { name: schedule.name || schedule.id.slice(0, 8) }))) return;
  try {
    await call(`/reports/schedules/${schedule.id}`, { method: "DELETE" });
    if (shownRuns?.id === schedule.id) shownRuns = null;
    say($("#sched-msg"), t("schedule.deleted"));
    await list();
  } catch (e) { say($("#sched-msg"), e.message, true); }
}

export function setup({ currentFilters }) {
  form().addEventListener("submit", save);
  form().elements.frequency.addEventListener("change", showWhen);
  $("#schedule-dialog").addEventListener("click", (e) => { if (e.target.closest("[data-close]")) $("#schedule-dialog").close(); });
  $("#sched-new").addEventListener("click", () => { try { openForm(currentFilters()); } catch (e) { openForm({}); } });
  $("#sched-refresh").addEventListener("click", list);
  $("#sched-table").addEventListener("click", (e) => {
    const button = e.target.closest("[data-act]");
    const schedule = button && known.find((s) => s.id === button.dataset.id);
    if (!schedule) return;
    if (button.dataset.act === "history") history(schedule);
    else if (button.dataset.act === "edit") openForm({}, schedule);
    else remove(schedule);
  });
  $("#runs-table").addEventListener("click", async (e) => {
    const button = e.target.closest("[data-download]");
    if (!button) return;
    try { await download(button.dataset.download, "registros-de-api.csv"); } catch (err) { say($("#sched-msg"), err.message, true); }
  });
}
