// Presence in the console: how a member's presence reads on the care-team
// page, and the idle report — after the server's idle time without input
// (GET /v1/me/presence's idle_seconds, TEND_PRESENCE_IDLE) the console says
// its user is away (POST /v1/me/presence {"state": "away"}), and online
// again at their next input.

import { dateTime } from "./format.js";

// presenceText says a member's presence in words; null means the reader
// may not see it (they are not in the team). Pure.
export function presenceText(p) {
  if (!p) return "Not shown: only the team's members see it";
  if (p.state === "online") return "Online";
  if (p.state === "away") return "Away";
  return p.last_seen ? `Offline, last seen ${dateTime(p.last_seen)}` : "Offline";
}

// INPUT are the events that count as the user being at the console.
const INPUT = ["pointerdown", "pointermove", "keydown", "wheel", "touchstart", "focus"];

// IdleReporter reports its user away after idle_seconds without input, and
// online at the next input. A failed report is tried again at the next
// check: presence is a courtesy, the console works without it.
export class IdleReporter {
  constructor(api) {
    this.api = api;
    this.idleMs = 0;
    this.last = Date.now();
    this.reported = "online";
    this.timer = null;
    this.input = () => {
      this.last = Date.now();
      if (this.reported !== "online") this.report("online");
    };
  }

  async start() {
    try {
      const own = await this.api.get("/v1/me/presence");
      this.idleMs = (own.idle_seconds || 0) * 1000;
    } catch {
      return; // a server without presence
    }
    if (!this.idleMs || this.stopped) return;
    for (const ev of INPUT) addEventListener(ev, this.input, { passive: true, capture: true });
    this.timer = setInterval(() => this.check(), Math.min(1000, this.idleMs / 2));
  }

  stop() {
    this.stopped = true;
    clearInterval(this.timer);
    for (const ev of INPUT) removeEventListener(ev, this.input, { capture: true });
  }

  check() {
    if (this.reported !== "away" && Date.now() - this.last >= this.idleMs) this.report("away");
  }

  async report(state) {
    const before = this.reported;
    this.reported = state;
    try {
      await this.api.post("/v1/me/presence", { state });
      if (this.reported === state) {
        // What the server was told, and when: lets tests follow it.
        document.body.dataset.presence = state;
        document.body.dataset.presenceAt = String(Date.now());
      }
    } catch {
      if (this.reported === state) this.reported = before;
    }
  }
}
