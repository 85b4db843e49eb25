// The report's columns, filter labels and words, loaded from the service (schemas/report_api_logs.json):
// the console shows the same labels as the CSV and the print view, in the same order.
import { getLang, t } from "./i18n.js";
import { dateTime, number } from "./format.js";

let definition = null;

export async function load() {
  if (!definition) definition = await (await fetch("/console/report-fields.json")).json();
  return definition;
}

export const columns = () => definition.fields;
export const columnLabel = (field) => field.label[getLang()];
export const filterLabel = (key) => definition.filters.find((f) => f.key === key)?.label[getLang()] ?? key;

/** A row's value as the screen shows it (Cliente = name and username, Tempo in the locale's numbers). */
export function cell(field, row) {
  const value = row[field.key];
  switch (field.kind) {
    case "client": {
      const user = row.client_username;
      return [value, user && user !== value ? `(${user})` : ""].filter(Boolean).join(" ");
    }
    case "bool": return value ? t("yes") : t("no");
    case "duration": return number(value);
    case "datetime": return dateTime(value);
    default: return value == null ? "" : String(value);
  }
}
