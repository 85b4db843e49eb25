// Numbers and dates in the chosen language, whatever the browser's own locale is: pt writes
// 36,172 and DD/MM/AAAA HH:MM, en writes 36.172 and YYYY-MM-DD HH:MM. Times are shown in the
// chosen time zone (the product's, America/Sao_Paulo, by default), the one the API reads dates in.
import { getLang, locale } from "./i18n.js";

export const PRODUCT_TZ = "America/Sao_Paulo";
let tz = localStorage.getItem("trilha-tz") || PRODUCT_TZ;

export const getTz = () => tz;
export function setTz(next) { tz = next || PRODUCT_TZ; localStorage.setItem("trilha-tz", tz); }

/** 36172 → "36.172" (pt) / "36,172" (en); 36.172 → "36,172" (pt). */
export function number(value, digits = 3) {
  if (value == null || value === "") return "";
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(Number(value));
}

function parts(date, withTime) {
  const options = { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" };
  if (withTime) Object.assign(options, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const out = {};
  for (const p of new Intl.DateTimeFormat("en-US", options).formatToParts(date)) out[p.type] = p.value;
  return out;
}

function compose(p, withTime) {
  const day = getLang() === "pt" ? `${p.day}/${p.month}/${p.year}` : `${p.year}-${p.month}-${p.day}`;
  return withTime ? `${day} ${p.hour}:${p.minute}` : day;
}

/** An instant as DD/MM/AAAA HH:MM (pt) or YYYY-MM-DD HH:MM (en) in the chosen zone. */
export function dateTime(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : compose(parts(date, true), true);
}

/** An instant's calendar day in the chosen zone, in the language's format. */
export function day(value) {
  if (!value) return "";
  return compose(parts(new Date(value), false), false);
}

const PT = /^(\d{1,2})\/(\d{1,2})\/(\d{4})(?:\s+(\d{1,2}):(\d{2}))?$/;
const EN = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[\sT]+(\d{1,2}):(\d{2}))?$/;

/** What the user typed, read in either format: {y, m, d, h, mi} (h/mi undefined without a time) or null. */
export function readDate(text) {
  const value = (text || "").trim();
  let m = PT.exec(value);
  let fields = m && { d: m[1], m: m[2], y: m[3], h: m[4], mi: m[5] };
  if (!fields && (m = EN.exec(value))) fields = { y: m[1], m: m[2], d: m[3], h: m[4], mi: m[5] };
  if (!fields) return null;
  const [y, mo, d] = [Number(fields.y), Number(fields.m), Number(fields.d)];
  const check = new Date(Date.UTC(y, mo - 1, d));
  if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) return null;
  if (fields.h !== undefined && (Number(fields.h) > 23 || Number(fields.mi) > 59)) return null;
  return fields;
}

/** The typed date in the language's own format (for the input after a language switch). */
export function writeDate(fields) {
  const p = { year: fields.y, month: String(fields.m).padStart(2, "0"), day: String(fields.d).padStart(2, "0"),
    hour: String(fields.h ?? "").padStart(2, "0"), minute: String(fields.mi ?? "").padStart(2, "0") };
  return compose(p, fields.h !== undefined);
}

/** The typed date as the API reads it (DD/MM/AAAA HH:MM in `tz`): "até 08:55" then covers the whole
 * minute, as the API includes everything up to the end of the precision typed. */
export function apiDate(fields) {
  const dd = String(fields.d).padStart(2, "0"), mm = String(fields.m).padStart(2, "0");
  const time = fields.h !== undefined ? ` ${String(fields.h).padStart(2, "0")}:${fields.mi}` : "";
  return `${dd}/${mm}/${fields.y}${time}`;
}
