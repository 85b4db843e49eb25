// Charts drawn as SVG by the console itself (no chart library, nothing fetched at run time):
// lines over time and horizontal bars, each with a title for screen readers and per-point hints.
const NS = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text != null) node.textContent = text;
  return node;
}

function frame(width, height, label) {
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, class: "chart-svg" });
  svg.append(el("title", {}, label));
  return svg;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((s) => s * power).find((s) => s >= value);
}

/** Lines over time. `points` are [{x: label, values: [..]}]; `series` [{name, className}]. */
export function lines(container, { label, points, series, format }) {
  const W = 560, H = 220, L = 48, R = 12, T = 12, B = 34;
  const svg = frame(W, H, label);
  const max = niceMax(Math.max(0, ...points.flatMap((p) => p.values)));
  const x = (i) => L + (points.length <= 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (points.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  for (let k = 0; k <= 4; k += 1) {
    const v = (max * k) / 4;
    svg.append(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid-line" }));
    svg.append(el("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, format(v)));
  }
  const step = Math.max(1, Math.ceil(points.length / 6));
  points.forEach((p, i) => {
    if (i % step === 0 || i === points.length - 1) svg.append(el("text", { x: x(i), y: H - 12, "text-anchor": "middle", class: "axis" }, p.x));
  });
  series.forEach((s, n) => {
    const coords = points.map((p, i) => `${x(i)},${y(p.values[n])}`).join(" ");
    svg.append(el("polyline", { points: coords, class: `series ${s.className}`, fill: "none" }));
    points.forEach((p, i) => {
      const dot = el("circle", { cx: x(i), cy: y(p.values[n]), r: 3, class: `dot ${s.className}` });
      dot.append(el("title", {}, `${p.x} — ${s.name}: ${format(p.values[n])}`));
      svg.append(dot);
    });
  });
  const legend = el("g", { class: "legend" });
  series.forEach((s, n) => {
    legend.append(el("rect", { x: L + n * 130, y: H - 8, width: 10, height: 4, class: `swatch ${s.className}` }));
    legend.append(el("text", { x: L + n * 130 + 14, y: H - 3, class: "axis" }, s.name));
  });
  svg.append(legend);
  replace(container, svg);
}

/** Horizontal bars, largest first. `items` are [{label, value, hint}]. */
export function bars(container, { label, items, format }) {
  const W = 560, row = 22, L = 190, R = 60;
  const H = Math.max(row * items.length + 8, 40);
  const svg = frame(W, H, label);
  const max = Math.max(1, ...items.map((i) => i.value));
  items.forEach((item, n) => {
    const y = 4 + n * row, width = ((W - L - R) * item.value) / max;
    const name = item.label.length > 28 ? `${item.label.slice(0, 27)}…` : item.label;
    const text = el("text", { x: L - 6, y: y + 14, "text-anchor": "end", class: "axis" }, name);
    const bar = el("rect", { x: L, y, width: Math.max(width, 1), height: row - 6, class: "bar" });
    bar.append(el("title", {}, `${item.label}: ${format(item.value)}${item.hint ? ` (${item.hint})` : ""}`));
    svg.append(text, bar, el("text", { x: L + width + 6, y: y + 14, class: "axis" }, format(item.value)));
  });
  replace(container, svg);
}

function replace(container, svg) {
  container.querySelector("svg")?.remove();
  container.querySelector(".empty")?.remove();
  container.append(svg);
}

export function empty(container, text) {
  container.querySelector("svg")?.remove();
  if (!container.querySelector(".empty")) { const p = document.createElement("p"); p.className = "empty"; container.append(p); }
  container.querySelector(".empty").textContent = text;
}
