// Live updates: Server-Sent Events from GET /v1/stream, read with fetch
// (EventSource cannot send an Authorization header). While the stream is
// unavailable — not offered by this server, or dropped — the queue is polled
// instead, and the stream is tried again now and then. Either way onChange
// is called when the queue (or, while polling, an open thread) may have
// changed; thread events go to onThread.

export const POLL_MS = 1000; // a new alert is on screen within 2 s, request time included
const STREAM_RETRY_MS = 30000; // after the server said no
const STREAM_RECONNECT_MS = 2000; // after an open stream dropped

// parseSSE splits a text/event-stream into events. It keeps partial input
// between calls: feed it chunks, get complete events back.
export class SSEParser {
  constructor() {
    this.buf = "";
    this.reset();
  }

  reset() {
    this.event = "";
    this.data = [];
    this.id = null;
  }

  push(chunk) {
    this.buf += chunk;
    const out = [];
    let nl;
    while ((nl = this.buf.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + (this.buf.startsWith("\r\n", nl) ? 2 : 1));
      if (line === "") {
        if (this.data.length > 0 || this.event) {
          out.push({ type: this.event || "message", data: this.data.join("\n"), id: this.id });
        }
        this.reset();
        continue;
      }
      if (line.startsWith(":")) continue; // comment: a heartbeat
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") this.event = value;
      else if (field === "data") this.data.push(value);
      else if (field === "id" && !value.includes("\0")) this.id = value;
    }
    return out;
  }
}

export class Live {
  // api: an Api; onChange(alertID?): the queue (and that alert) may have
  // changed; onMode(mode): "stream", "polling" or "offline"; onThread(type,
  // data): a thread event (message.created, message.read, typing) or a
  // change of someone's presence (presence).
  constructor(api, { onChange, onMode, onThread = () => {} }) {
    this.api = api;
    this.onChange = onChange;
    this.onMode = onMode;
    this.onThread = onThread;
    this.stopped = false;
    this.pollTimer = null;
    this.retryTimer = null;
    this.abort = null;
    this.lastEventID = null;
    this.mode = "";
  }

  start() {
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.pollTimer);
    clearTimeout(this.retryTimer);
    if (this.abort) this.abort.abort();
  }

  setMode(mode) {
    if (mode !== this.mode) {
      this.mode = mode;
      this.onMode(mode);
    }
  }

  async connect() {
    if (this.stopped) return;
    this.abort = new AbortController();
    let opened = false;
    try {
      const headers = this.api.headers({ Accept: "text/event-stream" });
      if (this.lastEventID) headers["Last-Event-ID"] = this.lastEventID;
      const res = await this.api.fetch("/v1/stream", {
        headers, signal: this.abort.signal, cache: "no-store", credentials: "omit",
      });
      const type = res.headers.get("Content-Type") || "";
      if (!res.ok || !type.startsWith("text/event-stream") || !res.body) {
        await res.body?.cancel();
        throw new Error(`stream unavailable (${res.status})`);
      }
      opened = true;
      this.stopPolling();
      this.setMode("stream");
      this.notify(); // catch up on whatever happened before the stream opened
      this.onThread("resync", {});
      await this.read(res.body);
    } catch (err) {
      if (this.stopped || err.name === "AbortError") return;
    }
    if (this.stopped) return;
    this.startPolling();
    this.retryTimer = setTimeout(() => this.connect(), opened ? STREAM_RECONNECT_MS : STREAM_RETRY_MS);
  }

  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SSEParser();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      for (const ev of parser.push(value)) {
        if (ev.id !== null) this.lastEventID = ev.id;
        this.dispatch(ev);
      }
    }
  }

  dispatch(ev) {
    switch (ev.type) {
      case "alert.created":
      case "alert.updated": {
        let id;
        try {
          const data = JSON.parse(ev.data);
          id = data?.id ?? data?.alert?.id ?? data?.alert_id;
        } catch {
          id = undefined;
        }
        this.notify(id);
        break;
      }
      case "reset": // too far behind to replay: refetch everything
        this.lastEventID = null;
        this.notify();
        this.onThread("resync", {});
        break;
      case "message.created":
      case "message.read":
      case "typing":
      case "presence": {
        let data;
        try {
          data = JSON.parse(ev.data);
        } catch {
          data = null;
        }
        if (data && typeof data === "object") this.onThread(ev.type, data);
        break;
      }
      default: // anything newer: not the console's business yet
    }
  }

  // notify runs onChange for a stream event; a failed refetch is retried by
  // the next event or by polling.
  notify(id) {
    Promise.resolve(this.onChange(id)).catch(() => {});
  }

  startPolling() {
    if (this.pollTimer !== null) return;
    this.setMode("polling");
    const tick = async () => {
      if (this.stopped || this.pollTimer === null) return;
      try {
        await this.onChange();
        if (this.mode === "offline") this.setMode("polling");
      } catch {
        this.setMode("offline");
      }
      if (this.pollTimer !== null) this.pollTimer = setTimeout(tick, POLL_MS);
    };
    this.pollTimer = setTimeout(tick, POLL_MS);
  }

  stopPolling() {
    clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }
}
