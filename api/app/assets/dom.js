// Small DOM helpers. Text from the server (messages, notes, names) only ever
// goes in as text, never as HTML.

// h builds an element: props are attributes, except "class", "text", and
// "on<event>" (a listener); children are nodes or strings (as text).
export function h(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) e.append(c);
  }
  return e;
}

// errorText says what went wrong in words: the API's problem, or that the
// server could not be reached.
export function errorText(err) {
  if (err && typeof err.text === "string") return err.text;
  if (err instanceof TypeError) return "No connection to the server. Please try again when you are online.";
  return err?.message || "Something went wrong.";
}

// heading is a view's first heading, focused when the view opens so that
// screen readers announce it.
export function heading(text) {
  return h("h1", { tabindex: "-1", id: "view-title", text });
}

// time says a time for people, in the phone's language and zone.
export function when(iso) {
  const d = new Date(iso);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleString([], { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

// status is a message area announced politely to screen readers.
export function status(cls = "note") {
  return h("p", { class: cls, role: "status", "aria-live": "polite" });
}
