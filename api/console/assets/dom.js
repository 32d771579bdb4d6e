// Small DOM helpers the console's pages share. Text is only ever set as
// text, never as HTML.

import { ApiError } from "./api.js";

// el makes an element with text and attributes (DOM properties where the
// element has them, such as htmlFor or value; dataset entries; else
// attributes).
export function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "dataset") Object.assign(e.dataset, v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  return e;
}

// errText is what the page says about a failed call: the API's problem
// word for word, or that the server could not be reached.
export function errText(err) {
  return err instanceof ApiError ? err.text : `Could not reach the server: ${err.message}`;
}
