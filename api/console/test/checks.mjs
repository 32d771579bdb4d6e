// Checks the browser test runs on every page and state of the console:
// axe-core (WCAG 2.2 AA, no violation allowed), no horizontal scroll and
// nothing off-screen at each viewport, and tap targets of at least 44 px
// on phones. Failures are collected in `report` and fail the run at its end
// (console.test.mjs), so that one run lists them all.
import { readFile } from "node:fs/promises";

export const PHONE = { width: 390, height: 844 };
export const TABLET = { width: 768, height: 1024 };
export const DESKTOP = { width: 1360, height: 1180 };
const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];

const axeSource = readFile(new URL("./node_modules/axe-core/axe.min.js", import.meta.url), "utf8");

// report gathers what every check found.
export const report = { axe_runs: 0, axe_violations: [], layout_checks: 0, layout_problems: [], targets_checked: 0 };

// axe runs axe-core in the page (injected through the DevTools protocol, so
// the page's Content-Security-Policy stays as served) and records every
// violation.
export async function axe(page, label) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) {
    await page.evaluate(await axeSource);
  }
  const res = await page.evaluate((tags) => window.axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] }), AXE_TAGS);
  report.axe_runs++;
  for (const v of res.violations) {
    report.axe_violations.push(`${label}: ${v.id} (${v.impact}) ${v.help}: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
  }
}

// layout checks that the page does not scroll sideways and that no visible
// control lies off-screen; on a phone, that every control is at least 44 px.
export async function layout(page, label, { targets = false } = {}) {
  const got = await page.evaluate((targets) => {
    const out = { scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, off: [], small: [], checked: 0 };
    const visible = (e) => {
      const r = e.getBoundingClientRect();
      return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== "hidden";
    };
    const name = (e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ""} "${(e.getAttribute("aria-label") || e.textContent || e.value || "").trim().slice(0, 40)}"`;
    for (const e of document.querySelectorAll("button, select, input, textarea, summary, a[href], [role=tab]")) {
      if (!visible(e) || e.closest(".skip") || (e.closest("details:not([open])") && !e.matches("summary"))) continue;
      const r = e.getBoundingClientRect();
      if (r.left < -1 || r.right > window.innerWidth + 1) out.off.push(`${name(e)} at ${Math.round(r.left)}–${Math.round(r.right)}`);
      if (!targets || e.matches("input[type=checkbox], a")) continue;
      out.checked++;
      if (r.height < 44 || r.width < 44) out.small.push(`${name(e)} ${Math.round(r.width)}×${Math.round(r.height)}`);
    }
    return out;
  }, targets);
  report.layout_checks++;
  report.targets_checked += got.checked;
  if (got.scrollWidth > got.innerWidth) report.layout_problems.push(`${label}: scrollWidth ${got.scrollWidth} > innerWidth ${got.innerWidth}`);
  for (const o of got.off) report.layout_problems.push(`${label}: off-screen ${o}`);
  for (const s of got.small) report.layout_problems.push(`${label}: tap target under 44 px: ${s}`);
}

// everywhere checks the page's layout as it is at the phone and tablet
// viewports and the desktop one it returns to, and runs axe on the phone
// and the desktop layouts (the tablet's differs from one or the other only
// in width).
export async function everywhere(page, label, { settle } = {}) {
  for (const [name, vp] of [["390×844", PHONE], ["768×1024", TABLET], ["1360×1180", DESKTOP]]) {
    await page.setViewportSize(vp);
    await page.waitForTimeout(50);
    if (settle) await settle();
    await layout(page, `${label} at ${name}`, { targets: vp === PHONE });
    if (vp !== TABLET) await axe(page, `${label} at ${name}`);
  }
}
