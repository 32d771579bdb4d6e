// The triage queue: unresolved alerts, most urgent first, then oldest first,
// with counts per urgency. Each row names the patient and the value that
// fired, with the urgency (always written out, never colour alone), age,
// state, assignee and unread messages.

import { dateTime, readingText } from "./format.js";

export const URGENCIES = ["critical", "high", "medium", "low"];
const RANK = Object.fromEntries(URGENCIES.map((u, i) => [u, i]));

export function urgencyLabel(u) {
  return u ? u[0].toUpperCase() + u.slice(1) : "Unknown";
}

export function statusLabel(s) {
  return (s || "unknown").replaceAll("_", " ");
}

// order sorts alerts by urgency, then age (oldest first), then id: the
// server's order, kept by the page whatever order items arrive in.
export function order(items) {
  return [...items].sort((a, b) =>
    (RANK[a.urgency] ?? 9) - (RANK[b.urgency] ?? 9) ||
    Date.parse(a.created_at) - Date.parse(b.created_at) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

// counts reads per-urgency counts from the list answer when the server sends
// them ({counts: {urgency: {...}}} or {counts: {critical: n, ...}}), and
// otherwise counts the items it has.
export function counts(list) {
  const c = list?.counts;
  const byUrgency = c && typeof c === "object" ? (c.urgency && typeof c.urgency === "object" ? c.urgency : c) : null;
  const out = {};
  for (const u of URGENCIES) {
    out[u] = byUrgency && Number.isFinite(byUrgency[u]) ? byUrgency[u] : 0;
  }
  if (!byUrgency || !URGENCIES.some((u) => Number.isFinite(byUrgency[u]))) {
    for (const a of list?.items ?? []) if (a.urgency in out) out[a.urgency]++;
  }
  return out;
}

// matchName keeps the alerts whose patient's name contains every word of q
// (case and accents ignored). Pure.
export function matchName(items, q) {
  const fold = (x) => String(x || "").normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
  const words = fold(q).split(/\s+/).filter(Boolean);
  if (!words.length) return items;
  return items.filter((a) => words.every((w) => fold(a.patient_name).includes(w)));
}

// rowFacts is what a queue row says, in reading order. Pure.
export function rowFacts(a, { prefs, now = Date.now(), me } = {}) {
  const assignee = a.assigned_to
    ? `Assigned to ${a.assigned_to === me ? "you" : a.assigned_to_name || "a colleague"}`
    : "Unassigned";
  const unread = a.unread_messages ? `${a.unread_messages} unread message${a.unread_messages === 1 ? "" : "s"}` : "";
  return {
    who: a.patient_name || "Patient",
    title: a.title || "Alert",
    value: a.last_reading ? readingText(a.last_reading, prefs) : "",
    status: statusLabel(a.status),
    age: `raised ${age(a.created_at, now)} ago`,
    assignee,
    unread,
  };
}

export function age(iso, now = Date.now()) {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d`;
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

export function renderCounts(ul, c) {
  ul.replaceChildren(...URGENCIES.map((u) =>
    el("li", { class: `count urgency-${u}`, dataset: { urgency: u } },
      el("span", { class: "count-n" }, String(c[u])), " ", urgencyLabel(u))));
}

// renderQueue redraws the list, keeping focus on the alert that had it.
// onOpen(id) opens an alert.
export function renderQueue(ol, items, { selected, onOpen, prefs, me }) {
  const focused = document.activeElement?.closest?.("[data-alert-id]")?.dataset.alertId;
  const now = Date.now();
  const rows = order(items).map((a) => {
    const f = rowFacts(a, { prefs, now, me });
    const meta = el("span", { class: "meta" },
      el("span", { class: `status status-${a.status}` }, f.status),
      " · ", el("span", { class: "age", title: dateTime(a.created_at) }, f.age),
      " · ", el("span", { class: "assignee" }, f.assignee));
    if (f.unread) meta.append(" · ", el("span", { class: "unread" }, f.unread));
    const b = el("button", { type: "button", class: "row", dataset: { alertId: a.id } },
      el("span", { class: "who" }, f.who),
      el("span", { class: `badge urgency-${a.urgency}` }, urgencyLabel(a.urgency)),
      el("span", { class: "title" }, f.title));
    if (f.value) b.append(el("span", { class: "value" }, f.value));
    b.append(meta);
    if (a.id === selected) b.setAttribute("aria-current", "true");
    b.addEventListener("click", () => onOpen(a.id));
    b.addEventListener("keydown", (ev) => moveFocus(ev, b));
    return el("li", { dataset: { alertId: a.id, urgency: a.urgency, status: a.status } }, b);
  });
  ol.replaceChildren(...rows);
  if (focused) ol.querySelector(`[data-alert-id="${CSS.escape(focused)}"] button`)?.focus();
}

function moveFocus(ev, button) {
  const li = button.parentElement;
  let target = null;
  switch (ev.key) {
    case "ArrowDown": case "j": target = li.nextElementSibling; break;
    case "ArrowUp": case "k": target = li.previousElementSibling; break;
    case "Home": target = li.parentElement.firstElementChild; break;
    case "End": target = li.parentElement.lastElementChild; break;
    default: return;
  }
  ev.preventDefault();
  target?.querySelector("button")?.focus();
}
