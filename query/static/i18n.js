// The console's language: its words in Portuguese (default) and English, kept as data in
// words.json (loaded once, before any module that imports this one runs), and the locale numbers
// and dates follow. Column and filter labels are not here: they come from the report's own
// definition (/console/report-fields.json, i.e. schemas/report_api_logs.json), shared with the CSV
// and print view.

const WORDS = await (await fetch("/console/words.json")).json();

const LOCALES = { pt: "pt-BR", en: "en-US" };
let lang = WORDS[localStorage.getItem("trilha-lang")] ? localStorage.getItem("trilha-lang") : "pt";

export const getLang = () => lang;
export const locale = () => LOCALES[lang];

export function setLang(next) {
  lang = WORDS[next] ? next : "pt";
  localStorage.setItem("trilha-lang", lang);
  document.documentElement.lang = locale();
}

/** The word `key` in the current language, with {name} placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const text = WORDS[lang][key] ?? WORDS.pt[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

/** Fill every element marked with data-i18n (text), data-i18n-label (title and aria-label) or
 * data-i18n-placeholder under `root`. */
export function translate(root = document) {
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-label]").forEach((el) => {
    el.title = t(el.dataset.i18nLabel); el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  document.title = t("app.title");
}
