// The whole record of one call, opened from a report row or an Events API row: every field, and the
// request and result as formatted JSON. A report row is looked up by its QueryId through the Events
// API (with its date, so the lookup is fast), with the same token.
import { sendJson } from "./api.js";
import { $, h } from "./dom.js";
import { t } from "./i18n.js";
import { dateTime, number } from "./format.js";

const dialog = () => $("#detail");

function pretty(value) {
  if (value == null || value === "") return "—";
  if (typeof value === "string") {
    try { return JSON.stringify(JSON.parse(value), null, 2); } catch (e) { return value; }
  }
  return JSON.stringify(value, null, 2);
}

function shown(key, value) {
  if (key === "timestamp") return `${dateTime(value)} (${value})`;
  if (key === "duration_ms") return number(value);
  if (key === "error") return value ? t("yes") : t("no");
  if (value != null && typeof value === "object") return JSON.stringify(value);
  return value == null ? "" : String(value);
}

/** Show `record` (a contract record, as the Events API returns it) in the detail dialog. */
export function show(record) {
  const fields = Object.entries(record).filter(([key]) => key !== "request" && key !== "result");
  const rows = fields.map(([key, value]) => h("tr", {}, h("th", { scope: "row" }, key), h("td", {}, shown(key, value))));
  $("#detail-title").textContent = t("detail.title", { id: record.query_id });
  $("#detail-body").replaceChildren(
    h("h3", {}, t("detail.fields")), h("table", { className: "fields" }, h("tbody", {}, rows)),
    h("h3", {}, t("detail.request")), h("pre", { className: "json", tabIndex: 0 }, pretty(record.request)),
    h("h3", {}, t("detail.result")), h("pre", { className: "json", tabIndex: 0 }, pretty(record.result)));
  if (!dialog().open) dialog().showModal();
}

/** Open the record of `queryId` (stored at `timestamp`, ISO) after fetching it from the Events API. */
export async function open(queryId, timestamp) {
  $("#detail-title").textContent = t("detail.title", { id: queryId });
  $("#detail-body").replaceChildren(h("p", { className: "msg" }, t("detail.loading")));
  if (!dialog().open) dialog().showModal();
  const body = { QueryId: queryId };
  if (timestamp) { body.QueryDate = timestamp.slice(0, 10); body.DateFormat = "yyyy-MM-dd"; }
  try {
    const answer = await sendJson("/events", "POST", body);
    show(answer.Result[0]);
  } catch (e) {
    $("#detail-body").replaceChildren(h("p", { className: "msg error" }, e.message));
  }
}

export function setup() {
  dialog().addEventListener("click", (e) => {
    if (e.target.closest("[data-close]") || e.target === dialog()) dialog().close();
  });
}
