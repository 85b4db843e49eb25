// The top bar's icons (as in the seed's screen), drawn as inline SVG: nothing fetched from outside.
const PATHS = {
  search: "M10.5 3a7.5 7.5 0 0 1 5.9 12.1l4.2 4.2-1.4 1.4-4.2-4.2A7.5 7.5 0 1 1 10.5 3zm0 2a5.5 5.5 0 1 0 0 11 5.5 5.5 0 0 0 0-11z",
  refresh: "M12 4a8 8 0 1 1-7.7 10h2.1A6 6 0 1 0 12 6c-1.7 0-3.2.7-4.3 1.8L10 10H3V3l2.3 2.3A8 8 0 0 1 12 4z",
  dots: "M12 5.5a1.75 1.75 0 1 1 0-3.5 1.75 1.75 0 0 1 0 3.5zm0 8.25a1.75 1.75 0 1 1 0-3.5 1.75 1.75 0 0 1 0 3.5zM12 22a1.75 1.75 0 1 1 0-3.5 1.75 1.75 0 0 1 0 3.5z",
  printer: "M7 3h10v4h2a2 2 0 0 1 2 2v7h-4v5H7v-5H3V9a2 2 0 0 1 2-2h2V3zm2 2v2h6V5H9zm0 10v4h6v-4H9zm9-5a1 1 0 1 0 0 2 1 1 0 0 0 0-2z",
  sheet: "M6 2h8l6 6v14H6V2zm8 1.5V9h5.5L14 3.5zM8 12v2h8v-2H8zm0 4v2h8v-2H8z",
  clock: "M12 2a10 10 0 1 1 0 20 10 10 0 0 1 0-20zm0 2a8 8 0 1 0 0 16 8 8 0 0 0 0-16zm1 3v4.6l3.7 2.2-1 1.7L11 12.7V7h2z",
  prev: "M15.4 5.4 9.8 11l5.6 5.6-1.4 1.4-7-7 7-7z", next: "M8.6 5.4 10 4l7 7-7 7-1.4-1.4 5.6-5.6z",
};
const SVG = "http://www.w3.org/2000/svg";

/** An <svg> icon, hidden from screen readers (the button carries the label). */
export function icon(name) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24"); svg.setAttribute("aria-hidden", "true"); svg.setAttribute("focusable", "false");
  svg.classList.add("icon");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", PATHS[name]);
  svg.append(path);
  return svg;
}

/** Put each [data-icon] element's icon in front of its content. */
export function drawIcons(root = document) {
  root.querySelectorAll("[data-icon]").forEach((el) => { if (!el.querySelector("svg")) el.prepend(icon(el.dataset.icon)); });
}
