// The admin console's reports: tickets opened and resolved, first-response and resolution times, CSAT,
// per day or week in the browser's time zone, optionally per agent or team (GET /api/admin/analytics/...).

import { chart } from "./charts.js";
import { $, el, showError } from "./dom.js";
import { api } from "./state.js";

const DAY_MS = 86_400_000;

/** 75 -> "1m 15s", 5400 -> "1h 30m", 200000 -> "2d 7h". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 10) return `${Math.round(seconds * 10) / 10}s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < DAY_MS / 1000) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

const percent = (value) => (value === null || value === undefined ? "–" : `${Math.round(value)}%`);
const count = (value) => (Number.isInteger(value) ? String(value) : value.toFixed(1));

function bucketLabel(iso, interval) {
  const date = new Date(iso).toLocaleDateString([], { month: "short", day: "numeric" });
  return interval === "week" ? `wk ${date}` : date;
}

function query() {
  const form = $("analytics-form");
  const start = new Date(Date.now() - (Number(form.days.value) - 1) * DAY_MS);
  const pad = (n) => String(n).padStart(2, "0");
  const params = new URLSearchParams({
    from: `${start.getFullYear()}-${pad(start.getMonth() + 1)}-${pad(start.getDate())}`, // a local date: days start in `tz`
    interval: form.interval.value,
    tz: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
  });
  if (form.group_by.value) params.set("group_by", form.group_by.value);
  return params;
}

function card(label, value) {
  return el("div", { class: "figure" }, el("span", { class: "figure-value", text: value }), el("span", { class: "figure-label", text: label }));
}

function chartBox(title, svg, legend) {
  return el("figure", { class: "chart" }, el("figcaption", { text: title }), svg,
    legend.length > 1 ? el("p", { class: "legend" }, ...legend.map((name, n) => el("span", { class: `key series-${n}`, text: name }))) : null);
}

function groupsTable(groupBy, tickets, first, resolution, csat) {
  const rows = new Map();
  const row = (key) => {
    if (!rows.has(key)) rows.set(key, { name: null, opened: 0, resolved: 0, first: null, resolution: null, score: null });
    return rows.get(key);
  };
  for (const g of tickets.groups) Object.assign(row(g.key), { name: g.name, opened: g.opened, resolved: g.resolved });
  for (const g of first.groups) Object.assign(row(g.key), { first: g.average_seconds, name: row(g.key).name ?? g.name });
  for (const g of resolution.groups) Object.assign(row(g.key), { resolution: g.average_seconds, name: row(g.key).name ?? g.name });
  for (const g of csat.groups) Object.assign(row(g.key), { score: g.score, name: row(g.key).name ?? g.name });
  const none = groupBy === "agent" ? "Unassigned" : "No team";
  const head = ["", "Opened", "Resolved", "First response", "Resolution", "CSAT"];
  return el("table", { class: "report-table" },
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { text: h || (groupBy === "agent" ? "Agent" : "Team") })))),
    el("tbody", {}, ...[...rows.entries()].sort((a, b) => b[1].opened - a[1].opened).map(([key, r]) => el("tr", {},
      el("th", { text: key === null ? none : r.name ?? key }), el("td", { text: String(r.opened) }), el("td", { text: String(r.resolved) }),
      el("td", { text: duration(r.first) }), el("td", { text: duration(r.resolution) }), el("td", { text: percent(r.score) })))));
}

export async function loadReports() {
  showError("analytics-error", null);
  const params = query();
  $("analytics-output").setAttribute("aria-busy", "true");
  try {
    const [tickets, first, resolution, csat] = await Promise.all(
      ["tickets", "first-response", "resolution", "csat"].map((name) => api.get(`/api/admin/analytics/${name}?${params}`)));
    const labels = tickets.series.map((p) => bucketLabel(p.start, tickets.interval));
    const toSeconds = (points) => points.map((p) => p.average_seconds);
    $("analytics-output").replaceChildren(
      el("div", { class: "figures" },
        card("opened", String(tickets.total.opened)), card("resolved", String(tickets.total.resolved)),
        card("first response", duration(first.total.average_seconds)), card("resolution", duration(resolution.total.average_seconds)),
        card(`CSAT (${csat.total.count} ratings)`, percent(csat.total.score))),
      el("div", { class: "charts" },
        chartBox("Tickets", chart({ title: "Tickets opened and resolved", labels, format: count, series: [
          { name: "opened", values: tickets.series.map((p) => p.opened) },
          { name: "resolved", values: tickets.series.map((p) => p.resolved) }] }), ["opened", "resolved"]),
        chartBox("Average first response", chart({ title: "Average first response time", labels, kind: "line", format: duration,
          series: [{ name: "first response", values: toSeconds(first.series) }] }), ["first response"]),
        chartBox("Average resolution time", chart({ title: "Average resolution time", labels, kind: "line", format: duration,
          series: [{ name: "resolution", values: toSeconds(resolution.series) }] }), ["resolution"]),
        chartBox("Satisfaction", chart({ title: "CSAT score (ratings of 4 or 5)", labels, format: percent, max: 100,
          series: [{ name: "CSAT", values: csat.series.map((p) => p.score) }] }), ["CSAT"])),
      tickets.group_by ? groupsTable(tickets.group_by, tickets, first, resolution, csat) : "");
  } catch (error) {
    showError("analytics-error", error);
  } finally {
    $("analytics-output").removeAttribute("aria-busy");
  }
}

export function wire() {
  $("analytics-form").addEventListener("change", loadReports);
  $("analytics-form").addEventListener("submit", (event) => { event.preventDefault(); loadReports(); });
}
