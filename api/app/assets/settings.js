// Settings: units, text size, contrast, the idle lock and its code,
// notifications, this phone's encryption key fingerprint, and signing out (which forgets everything on the phone).

import { UNITS } from "./units.js";
import { savePrefs, TEXT_SIZES } from "./prefs.js";
import { h, heading, errorText, status } from "./dom.js";
import { hasCode, setCode, clearCode } from "./lock.js";
import { pushSupported, pushEnabled, enablePush, disablePush } from "./push.js";

const UNIT_NAMES = { blood_glucose: "Blood sugar", body_weight: "Weight", body_temperature: "Temperature" };
const LOCK_MINUTES = [1, 2, 5, 10, 15, 30];

function radios(name, legend, options, value, onChange) {
  return h("fieldset", { class: "choices" }, h("legend", { text: legend }),
    ...options.map((o) => h("label", { class: "choice" },
      h("input", { type: "radio", name, value: o.value, checked: String(o.value) === String(value), onchange: () => onChange(o.value) }),
      ` ${o.label}`)));
}

export async function render(ctx, main) {
  const p = ctx.prefs();
  const save = (k, v) => { p[k] = v; savePrefs(p); ctx.announce("Saved."); };
  const look = h("section", { class: "card", "aria-labelledby": "look-h" }, h("h2", { id: "look-h", text: "Reading the screen" }),
    radios("text_size", "Text size", TEXT_SIZES.map((s) => ({ value: s, label: `${s} %` })), p.text_size, (v) => save("text_size", v)),
    radios("contrast", "Colours", [{ value: "normal", label: "Standard" }, { value: "high", label: "High contrast" }], p.contrast,
      (v) => save("contrast", v)));
  const units = h("section", { class: "card", "aria-labelledby": "units-h" }, h("h2", { id: "units-h", text: "Units" }),
    ...Object.entries(UNITS).map(([group, list]) => radios(`unit-${group}`, UNIT_NAMES[group],
      list.map((u) => ({ value: u.id, label: u.label })), p[group] || list[0].id, (v) => save(group, v))));
  main.append(heading("Settings"), look, units, lockSection(ctx, p, save), pushSection(ctx), await keySection(ctx), signOutSection(ctx));
  return null;
}

// keySection shows this phone's encryption key fingerprint, for the care
// team to compare with what their screens show (docs/e2ee.md).
async function keySection(ctx) {
  const { device, notice } = await ctx.device;
  return h("section", { class: "card", "aria-labelledby": "key-h" }, h("h2", { id: "key-h", text: "Encryption key" }),
    device ? h("p", { text: "This phone's key fingerprint. Your care team can compare it with the one their screen shows for you:" }) : null,
    device ? h("p", {}, h("code", { id: "e2ee-fingerprint", class: "fingerprint", text: device.fingerprint })) : null,
    notice ? h("p", { text: notice }) : null);
}

function lockSection(ctx, p, save) {
  const max = (ctx.config.idle_lock_seconds || 300) / 60;
  const options = LOCK_MINUTES.filter((m) => m <= max).map((m) => ({ value: m, label: `${m} minute${m === 1 ? "" : "s"}` }));
  const current = p.lock_minutes && p.lock_minutes <= max ? p.lock_minutes : Math.round(max);
  if (!options.some((o) => o.value === current)) options.push({ value: current, label: `${current} minutes` });
  const msg = status();
  const code = h("input", { id: "lock-code", type: "password", inputmode: "numeric", autocomplete: "new-password", minlength: "4" });
  const form = h("form", { onsubmit: async (ev) => {
    ev.preventDefault();
    if (!/^\d{4,}$/.test(code.value)) {
      msg.textContent = "Please use at least 4 digits.";
      return;
    }
    await setCode(code.value);
    code.value = "";
    msg.textContent = "Lock code saved. The app will ask for it after it locks.";
  } }, h("label", { for: "lock-code", text: hasCode() ? "New lock code (at least 4 digits)" : "Lock code (at least 4 digits)" }), code,
  h("button", { type: "submit" }, "Save lock code"),
  hasCode() ? h("button", { type: "button", onclick: () => { clearCode(); msg.textContent = "Lock code removed: the app will sign out instead of locking."; } },
    "Remove lock code") : null);
  return h("section", { class: "card", "aria-labelledby": "lock-h" }, h("h2", { id: "lock-h", text: "Privacy" }),
    h("p", { text: "When the app is not used for a while, it locks (with a lock code) or signs out (without one)." }),
    radios("lock_minutes", "Lock after", options, current, (v) => save("lock_minutes", v)), form, msg);
}

function pushSection(ctx) {
  const msg = status();
  const sec = h("section", { class: "card", "aria-labelledby": "push-h" }, h("h2", { id: "push-h", text: "Notifications" }));
  if (!pushSupported(ctx.config)) {
    sec.append(h("p", { text: "Notifications are not available on this phone or server." }));
    return sec;
  }
  const on = pushEnabled();
  sec.append(h("p", { text: "Notifications never say anything about your health: only that there is something to see." }),
    h("button", { type: "button", id: "push-toggle", onclick: async () => {
      msg.textContent = "…";
      try {
        msg.textContent = await (pushEnabled() ? disablePush(ctx) : enablePush(ctx));
      } catch (err) {
        msg.textContent = `Notifications could not be changed: ${errorText(err)}`;
      }
    } }, on ? "Turn notifications off" : "Turn notifications on"), msg);
  return sec;
}

function signOutSection(ctx) {
  const msg = h("p", { class: "note", id: "signout-note" });
  const button = h("button", { type: "button", class: "danger", id: "signout", onclick: async () => {
    const waiting = (await ctx.sender.pending()).length;
    if (waiting > 0 && button.dataset.confirm !== "yes") {
      button.dataset.confirm = "yes";
      msg.textContent = `${waiting} reading${waiting === 1 ? " has" : "s have"} not been sent yet and will be lost. Press Sign out again to sign out anyway.`;
      button.focus();
      return;
    }
    ctx.signOut();
  } }, "Sign out");
  return h("section", { class: "card", "aria-labelledby": "out-h" }, h("h2", { id: "out-h", text: "Sign out" }),
    h("p", { text: "Signing out removes everything this app kept on this phone." }), button, msg);
}
