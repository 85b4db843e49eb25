// Small DOM helpers: elements are built with textContent only (never innerHTML with data), so a
// record's content can never become markup.
export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** h("td", {className: "x", title: "y"}, "text", child) */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null) continue;
    if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("aria-") || key === "role" || key === "scope" || key === "for") el.setAttribute(key, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el[key] = value;
  }
  for (const child of children.flat()) if (child != null) el.append(child);
  return el;
}

/** Show `text` in a status line (aria-live) as information or as an error. */
export function say(el, text, isError = false) {
  el.textContent = text || "";
  el.classList.toggle("error", Boolean(isError));
}
