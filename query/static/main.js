// The console's entry point: sign-in with a token, the tabs, the language and time-zone switches.
import { hasToken, setToken } from "./api.js";
import * as dashboard from "./dashboard.js";
import { $, $$, say } from "./dom.js";
import * as events from "./events.js";
import * as fields from "./fields.js";
import * as gateways from "./gateways.js";
import { getTz, PRODUCT_TZ, setTz } from "./format.js";
import { getLang, setLang, t, translate } from "./i18n.js";
import { drawIcons } from "./icons.js";
import * as logs from "./logs.js";
import * as record from "./record.js";
import * as schedules from "./schedules.js";

let tab = "logs";

function show(name) {
  tab = name;
  $$("nav [data-tab]").forEach((b) => { if (b.dataset.tab === name) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current"); });
  $$("main > section").forEach((s) => { s.hidden = s.id !== name; });
  dashboard.active(name === "dashboard" && hasToken());
  if (!hasToken()) return;
  if (name === "schedules") schedules.list();
  if (name === "gateways") gateways.refresh();
}

function zones() {
  const own = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const choices = [...new Set([PRODUCT_TZ, "UTC", own, getTz()].filter(Boolean))];
  $("#tz").replaceChildren(...choices.map((z) => new Option(z, z, false, z === getTz())));
}

function relabel() {
  translate();
  logs.relabel();
  events.relabel();
  if (!hasToken()) say($("#global-msg"), t("token.needed"));
}

function start() {
  say($("#global-msg"), "");
  logs.search();
  if (tab === "schedules") schedules.list();
  if (tab === "gateways") gateways.refresh();
  dashboard.active(tab === "dashboard");
}

async function boot() {
  setLang(getLang());
  await fields.load();
  drawIcons();
  zones();
  $("#lang").value = getLang();
  record.setup();
  const schedule = () => {
    try { schedules.openForm(logs.scheduleFilters()); } catch (e) { say($("#logs-msg"), e.message, true); }
  };
  logs.setup({ schedule, navigate: show });
  schedules.setup({ currentFilters: logs.scheduleFilters });
  dashboard.setup();
  events.setup();
  gateways.setup();
  relabel();
  $$("nav [data-tab]").forEach((b) => b.addEventListener("click", () => show(b.dataset.tab)));
  $("#token-form").addEventListener("submit", (e) => { e.preventDefault(); setToken($("#token").value); $("#token").value = ""; if (hasToken()) start(); });
  $("#forget").addEventListener("click", () => { setToken(""); window.location.reload(); });
  $("#lang").addEventListener("change", () => { setLang($("#lang").value); relabel(); if (hasToken()) start(); });
  $("#tz").addEventListener("change", () => { setTz($("#tz").value); if (hasToken()) start(); });
  document.body.dataset.ready = "true";
  if (hasToken()) start();
}

boot();
