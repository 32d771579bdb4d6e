// Live updates for the patient: GET /v1/stream (Server-Sent Events read with
// fetch, as the console does, because EventSource cannot send the token).
// A patient receives the events of their own threads: message.created,
// message.read and typing. While the stream is unavailable, a "poll" event
// every few seconds lets the open view refetch instead.

import { SSEParser } from "../../console/assets/live.js";

const RECONNECT_MS = 3000;
const POLL_MS = 4000;

export class Stream extends EventTarget {
  constructor(api) {
    super();
    this.api = api;
    this.stopped = false;
    this.lastID = null;
    this.live = false;
  }

  start() {
    this.connect();
    this.poller = setInterval(() => {
      if (!this.live) this.dispatchEvent(new CustomEvent("poll"));
    }, POLL_MS);
  }

  stop() {
    this.stopped = true;
    clearInterval(this.poller);
    clearTimeout(this.timer);
    this.abort?.abort();
  }

  async connect() {
    if (this.stopped) return;
    this.abort = new AbortController();
    const headers = this.api.headers({ Accept: "text/event-stream" });
    if (this.lastID) headers["Last-Event-ID"] = this.lastID;
    try {
      const res = await this.api.fetch("/v1/stream", { headers, signal: this.abort.signal, cache: "no-store", credentials: "omit" });
      if (!res.ok || !res.body) throw new Error(`stream ${res.status}`);
      this.live = true;
      this.dispatchEvent(new CustomEvent("mode", { detail: "live" }));
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      const parser = new SSEParser();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const ev of parser.push(value)) this.deliver(ev);
      }
    } catch {
      // dropped or refused: poll until it is back
    }
    this.live = false;
    if (this.stopped) return;
    this.dispatchEvent(new CustomEvent("mode", { detail: "polling" }));
    this.timer = setTimeout(() => this.connect(), RECONNECT_MS);
  }

  deliver(ev) {
    if (ev.id) this.lastID = ev.id;
    let data = {};
    try {
      data = JSON.parse(ev.data || "{}");
    } catch {
      return;
    }
    this.dispatchEvent(new CustomEvent(ev.type, { detail: data }));
  }
}
