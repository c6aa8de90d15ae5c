// Small SVG charts for the admin console (no library, no build step): grouped bars or lines over time buckets.
// Sizes and colours are SVG attributes and classes (the page's CSP allows no inline styles); text via textContent.

const NS = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 220;
const PAD = { top: 12, right: 12, bottom: 28, left: 52 };
const MAX_LABELS = 8;

function node(tag, attrs = {}, text = null) {
  const element = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, String(value));
  if (text !== null) element.textContent = text;
  return element;
}

/** A round upper bound for the axis: 1, 2 or 5 times a power of ten at or above `value`. */
function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((step) => step * power).find((bound) => bound >= value);
}

/**
 * An `<svg>` chart: `labels` along the x axis, one entry per bucket; `series` = [{name, values, key}] where
 * `values` may hold nulls (no data: no bar, a gap in the line); `format` writes a value for the axis and tooltips;
 * `max` fixes the top of the axis (100 for percentages), else it is the next round number above the data.
 */
export function chart({ title, labels, series, kind = "bars", format = String, max = null }) {
  const values = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  const top = max ?? niceMax(Math.max(0, ...values));
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const y = (value) => PAD.top + plotHeight - (value / top) * plotHeight;
  const slot = plotWidth / Math.max(labels.length, 1);
  const svg = node("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", class: `chart-svg ${kind}` });
  svg.append(node("title", {}, title));
  for (let i = 0; i <= 4; i += 1) {
    const value = (top * i) / 4;
    svg.append(node("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(value), y2: y(value), class: "grid" }));
    svg.append(node("text", { x: PAD.left - 6, y: y(value) + 4, "text-anchor": "end", class: "axis" }, format(value)));
  }
  const every = Math.ceil(labels.length / MAX_LABELS);
  labels.forEach((label, i) => {
    if (i % every === 0) svg.append(node("text", { x: PAD.left + slot * (i + 0.5), y: HEIGHT - 8, "text-anchor": "middle", class: "axis" }, label));
  });
  series.forEach((s, n) => {
    if (kind === "bars") {
      const barWidth = Math.max(1, (slot * 0.8) / series.length);
      s.values.forEach((value, i) => {
        if (value === null || value === undefined) return;
        const x = PAD.left + slot * i + slot * 0.1 + barWidth * n;
        const bar = node("rect", { x, y: y(value), width: barWidth, height: Math.max(0, PAD.top + plotHeight - y(value)), class: `series-${n}` });
        bar.append(node("title", {}, `${labels[i]}: ${s.name} ${format(value)}`));
        svg.append(bar);
      });
    } else {
      let path = "";
      s.values.forEach((value, i) => {
        if (value === null || value === undefined) return;
        const point = `${(PAD.left + slot * (i + 0.5)).toFixed(1)},${y(value).toFixed(1)}`;
        const joined = i > 0 && s.values[i - 1] !== null && s.values[i - 1] !== undefined;
        path += `${joined ? "L" : "M"}${point} `;
        const dot = node("circle", { cx: PAD.left + slot * (i + 0.5), cy: y(value), r: 3, class: `series-${n}` });
        dot.append(node("title", {}, `${labels[i]}: ${s.name} ${format(value)}`));
        svg.append(dot);
      });
      if (path) svg.insertBefore(node("path", { d: path.trim(), class: `line series-${n}` }), svg.querySelector("circle"));
    }
  });
  const summary = series.map((s) => `${s.name}: ${s.values.filter((v) => v !== null).length} points`).join(", ");
  svg.setAttribute("aria-label", `${title}. ${summary}`);
  return svg;
}
