// The console's only way to the server: the public /v1 API with the user's
// bearer token. Errors are problem+json (RFC 9457); ApiError keeps what the
// server said so the page can show it as it is.

export class ApiError extends Error {
  // retryAfter is the answer's Retry-After (seconds), where it has one.
  constructor(status, problem, retryAfter = null) {
    const title = problem.title || `HTTP ${status}`;
    super(problem.detail ? `${title}: ${problem.detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = problem.detail || "";
    this.fields = Array.isArray(problem.errors) ? problem.errors : [];
    this.retryAfter = retryAfter;
    // current is a 409's current state of the object, where it has one.
    this.current = problem.current ?? null;
  }

  // text is the whole message, validation fields included.
  get text() {
    const fields = this.fields.map((e) => `${e.field}: ${e.reason}`).join("; ");
    return fields ? `${this.message} (${fields})` : this.message;
  }
}

export class Api {
  constructor(token, fetchFn = globalThis.fetch.bind(globalThis)) {
    this.token = token;
    this.fetch = fetchFn;
  }

  headers(extra = {}) {
    return { Authorization: `Bearer ${this.token}`, Accept: "application/json", ...extra };
  }

  // request sends one call and returns its JSON body; a non-2xx answer
  // throws an ApiError carrying the server's problem text.
  // Credentials (cookies) are never sent, except where a call asks for the
  // job dashboard's session cookie to be set or cleared.
  async request(method, path, body, signal, credentials = "omit") {
    const init = { method, headers: this.headers(), signal, cache: "no-store", credentials };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await this.fetch(path, init);
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!res.ok) {
      throw new ApiError(res.status, data && typeof data === "object" ? data : { title: res.statusText }, res.headers.get("Retry-After"));
    }
    return data;
  }

  get(path, signal) {
    return this.request("GET", path, undefined, signal);
  }

  post(path, body) {
    return this.request("POST", path, body);
  }

  put(path, body) {
    return this.request("PUT", path, body);
  }

  patch(path, body) {
    return this.request("PATCH", path, body);
  }

  del(path) {
    return this.request("DELETE", path);
  }

  // session asks for the job dashboard's cookie (admins); endSession
  // clears it. The cookie is HttpOnly: this page never sees it.
  session() {
    return this.request("POST", "/v1/session", undefined, undefined, "same-origin");
  }

  endSession() {
    return this.request("DELETE", "/v1/session", undefined, undefined, "same-origin");
  }

  schedules(patientID, signal) {
    return this.get(`/v1/patients/${encodeURIComponent(patientID)}/schedules`, signal);
  }

  // doses returns the patient's doses of the last 7 days (and those due up
  // to 48 hours ahead, the API's default window).
  doses(patientID, signal) {
    return this.get(`/v1/patients/${encodeURIComponent(patientID)}/doses?limit=200`, signal);
  }

  adherence(patientID, signal) {
    return this.get(`/v1/patients/${encodeURIComponent(patientID)}/adherence`, signal);
  }

  // alerts reads the queue; filter: {care_team_id?, urgency?, status?}.
  alerts(filter = {}, signal) {
    const q = new URLSearchParams({ limit: "200" });
    for (const [k, v] of Object.entries(filter)) if (v) q.set(k, v);
    return this.get(`/v1/alerts?${q}`, signal);
  }

  // me is the caller: user, role, teams with team roles, capabilities.
  me(signal) {
    return this.get("/v1/me", signal);
  }

  alert(id, signal) {
    return this.get(`/v1/alerts/${encodeURIComponent(id)}`, signal);
  }

  readings(patientID, kind, signal) {
    const q = new URLSearchParams({ kind, limit: "200" });
    return this.get(`/v1/patients/${encodeURIComponent(patientID)}/readings?${q}`, signal);
  }

  patient(id, signal) {
    return this.get(`/v1/patients/${encodeURIComponent(id)}`, signal);
  }

  rule(id, signal) {
    return this.get(`/v1/rules/${encodeURIComponent(id)}`, signal);
  }

  params(patientID, signal) {
    return this.get(`/v1/patients/${encodeURIComponent(patientID)}/params`, signal);
  }

  careTeam(id, signal) {
    return this.get(`/v1/care-teams/${encodeURIComponent(id)}`, signal);
  }

  // act calls one lifecycle endpoint: ack, resolve, snooze or assign.
  act(id, action, body) {
    return this.post(`/v1/alerts/${encodeURIComponent(id)}/${action}`, body);
  }
}
