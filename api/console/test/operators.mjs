// The operators' part of the browser test: an admin uses every
// administration page (users and tokens, patients and devices, care teams
// and a broadcast, rules with a simulation and a backtest, the audit, the
// job dashboard), and a lead of team A (not an admin) broadcasts from the
// care-team page and simulates a rule change. Each page is checked at every
// viewport with axe. What the pages did is checked through the API by the
// Go side.
import { everywhere } from "./checks.mjs";

const { BASE_URL, DISABLE_USER, TEAM_A, BROADCAST_TEXT, LEAD_BROADCAST_TEXT, TOKEN_ADMIN } = process.env;

// openSection moves to a section with the keyboard.
export async function openSection(page, name, check) {
  await page.locator(`#nav-${name}`).focus();
  await page.keyboard.press("Enter");
  await page.locator(`#section-${name}`).waitFor({ state: "visible", timeout: 5000 });
  check(await page.evaluate((n) => document.activeElement?.id === `${n}-heading`, name), `focus did not move to the ${name} heading`);
}

async function users(page, out, { check, fail }) {
  await openSection(page, "users", check);
  const row = page.locator(`#users-table tr[data-user-id="${DISABLE_USER}"]`);
  await row.waitFor({ timeout: 5000 });
  await row.getByRole("button", { name: "Tokens of Dr Cal Temp" }).click();
  await page.locator("#token-expiry").selectOption("7d");
  await page.getByRole("button", { name: "Issue token" }).click();
  await page.locator("#new-token:not([hidden])").waitFor({ timeout: 5000 }).catch(async () =>
    fail(`issue a token: ${await page.locator("#users-error").textContent()}`));
  out.token_issued = (await page.locator("#new-token-value").inputValue()).startsWith("tend_");
  await everywhere(page, "users page with a new token");
  // The user's first token (from the test's setup) and the new one: revoke the new one.
  const tokenRow = page.locator('#tokens-table tr[data-revoked="false"]', { hasText: "Valid" }).filter({ hasNotText: "Never" }).first();
  await tokenRow.getByRole("button", { name: /^Revoke token / }).click();
  await page.locator('#tokens-table tbody tr[data-revoked="true"]').waitFor({ timeout: 5000 });
  out.token_revoked = (await page.locator('#tokens-table tr[data-revoked="true"]').count()) === 1;
  await row.getByRole("button", { name: "Disable Dr Cal Temp" }).focus();
  await page.keyboard.press("Enter");
  await page.locator(`#users-table tr[data-user-id="${DISABLE_USER}"][data-disabled="true"]`).waitFor({ timeout: 5000 }).catch(async () =>
    fail(`disable: ${await page.locator("#users-error").textContent()}`));
  out.disabled = true;
}

// patients enrols a patient, changes their time zone and links a device.
async function patients(page, out, { check, fail }) {
  await openSection(page, "patients", check);
  await page.locator("#patients-table tbody tr").first().waitFor({ timeout: 5000 }).catch(async () =>
    fail(`patients: ${await page.locator("#patients-error").textContent()}`));
  await everywhere(page, "patients page");
  await page.getByRole("button", { name: "New patient" }).click();
  await page.locator("#patient-name").fill("Noor Haddad");
  await page.locator("#patient-tz").fill("Europe/London");
  await page.locator("#patient-team").selectOption({ label: "Pulmonary RPM" }); // not team A, whose broadcasts are counted
  await page.locator("#program-hypertension").check();
  await page.getByRole("button", { name: "Save patient" }).click();
  await page.locator("#patients-result", { hasText: "Enrolled Noor Haddad." }).waitFor({ timeout: 5000 }).catch(async () =>
    fail(`enrol: ${await page.locator("#patients-error").textContent()}`));
  const id = await page.locator("#patients-table tr", { hasText: "Noor Haddad" }).getAttribute("data-patient-id");
  await page.locator("#patient-tz").fill("America/Chicago");
  await page.locator("#program-diabetes").check();
  await page.getByRole("button", { name: "Save patient" }).click();
  await page.locator("#patients-result", { hasText: "Saved Noor Haddad." }).waitFor({ timeout: 5000 }).catch(async () =>
    fail(`edit patient: ${await page.locator("#patients-error").textContent()}`));
  await page.locator("#device-name").fill("Noor's cuff");
  await page.getByRole("button", { name: "Link a device" }).click();
  await page.locator("#device-token:not([hidden])").waitFor({ timeout: 5000 }).catch(async () =>
    fail(`link a device: ${await page.locator("#patients-error").textContent()}`));
  out.patient = { id, device_token: await page.locator("#device-token-value").inputValue() };
  await everywhere(page, "patient editor with a linked device");
}

async function teams(page, out, { check, fail }) {
  await openSection(page, "teams", check);
  await page.locator(`#teams-table tr[data-team-id="${TEAM_A}"]`).waitFor({ timeout: 5000 }).catch(async () =>
    fail(`care teams: ${await page.locator("#teams-error").textContent()}`));
  await page.locator(`#teams-table tr[data-team-id="${TEAM_A}"]`).getByRole("button", { name: /^Edit / }).click();
  await page.locator("#team-form:not([hidden])").waitFor({ timeout: 5000 });
  await page.getByLabel("Acknowledge critical within").fill("7m");
  await page.getByLabel(/^Levels, in order/).fill("on_call, all");
  await page.getByLabel(/Skip offline clinicians for the first step/).check();
  await page.getByRole("button", { name: "Save team" }).click();
  await page.locator("#teams-result:not(:empty)").waitFor({ timeout: 5000 }).catch(async () =>
    fail(`save team: ${await page.locator("#teams-error").textContent()}`));
  out.team_saved = TEAM_A;
  await page.locator(`#teams-table tr[data-team-id="${TEAM_A}"]`, { hasText: "offline clinicians paged from step 1" })
    .waitFor({ timeout: 5000 }).catch(() => fail("the team list does not say that offline clinicians are paged from step 1"));
  // The admin is not in team A: its members are listed without presence.
  await page.locator(`#teams-table tr[data-team-id="${TEAM_A}"]`).getByRole("button", { name: /^Members of / }).click();
  await page.locator("#team-members-table tbody tr").first().waitFor({ timeout: 5000 });
  out.members_presence = await page.locator("#team-members-table tbody td.presence").allTextContents();
  await page.getByRole("button", { name: "Add a rota slot" }).click();
  await everywhere(page, "care-team editor");
  await page.getByRole("button", { name: /^Remove slot / }).last().click();

  // Broadcast to team A's patients, and follow it until it completes.
  await page.locator("#broadcast-form:not([hidden])").waitFor({ timeout: 5000 });
  await page.getByLabel("Message to every patient of the team").fill(BROADCAST_TEXT);
  await page.getByRole("button", { name: "Send broadcast" }).click();
  await page.locator('#broadcast-form[data-status="completed"]').waitFor({ timeout: 30000 }).catch(async () =>
    fail(`broadcast: ${await page.locator("#broadcast-progress").textContent()} ${await page.locator("#broadcast-error").textContent()}`));
  out.broadcast = { id: await page.locator("#broadcast-form").getAttribute("data-broadcast-id"),
    progress: await page.locator("#broadcast-progress").textContent() };
}

// forgive drops the console's note of an answer a step provoked on purpose
// (a 422, a 503) from the page's problems, and nothing else.
function forgive(c, since, status) {
  const kept = c.problems.slice(since).filter((p) => !p.includes(`status of ${status}`));
  c.problems.splice(since, Infinity, ...kept);
}

// simulated reads the simulation's result as the page shows it, with the
// server's answer it came from.
async function simulated(page, resp) {
  const cells = (sel) => page.locator(sel).evaluateAll((rows) => rows.map((r) => {
    const td = (pack) => r.querySelector(`td[data-pack="${pack}"]`);
    return { label: r.querySelector("th").textContent, event: r.dataset.event || "",
      current: Number(td("current").dataset.value), proposed: Number(td("proposed").dataset.value),
      current_median: td("current").dataset.median ?? "", proposed_median: td("proposed").dataset.median ?? "",
      text: [...r.querySelectorAll("td")].map((d) => d.textContent) };
  }));
  return { status: resp.status(), request: JSON.parse(resp.request().postData() || "null"), response: await resp.json(),
    needless: await cells("#simulate-needless tbody tr"), events: await cells("#simulate-events-0 tbody tr"),
    headers: await page.locator("#simulate-events-0 thead th").allTextContents(),
    status_text: await page.locator("#simulate-status").textContent() };
}

// simulate runs the simulation from the rule's parameter editor and waits
// for its result.
async function simulate(page, fail, label) {
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/v1/rules/simulate") && r.request().method() === "POST", { timeout: 120000 }),
    page.getByRole("button", { name: "Simulate before saving" }).click(),
  ]);
  await page.locator('#simulate-form[data-state="done"]').waitFor({ timeout: 10000 }).catch(async () =>
    fail(`${label}: ${resp.status()} ${await page.locator("#simulate-status").textContent()} ${await page.locator("#simulate-error").textContent()}`));
  return simulated(page, resp);
}

// simulation: the admin, in bp-crisis's parameter editor, first proposes a
// value its bounds refuse (the server's 422 shows next to the field), then
// a valid one, and reads both packs' figures side by side.
async function simulation(page, out, { check, fail }, c) {
  check(await page.locator("#simulate-form").isVisible(), "the rule page offers an admin no simulation");
  check((await page.locator("#simulate-size").inputValue()) === "quick", "the simulation's size is not the quick one by default");
  await page.locator("#param-systolic_max").fill("900");
  const before = c.problems.length;
  await page.getByRole("button", { name: "Simulate before saving" }).click();
  await page.locator("#param-systolic_max-error:not(:empty)").waitFor({ timeout: 60000 }).catch(async () =>
    fail(`a refused simulation: ${await page.locator("#simulate-error").textContent()}`));
  out.simulation_refused = { field_error: await page.locator("#param-systolic_max-error").textContent(),
    invalid: await page.locator("#param-systolic_max").getAttribute("aria-invalid"),
    focused: await page.evaluate(() => document.activeElement?.id) };
  await everywhere(page, "rules page with a refused simulation");
  forgive(c, before, 422);
  await page.locator("#param-systolic_max").fill("185");
  out.simulation = await simulate(page, fail, "simulate");
  check((await page.locator("#param-systolic_max").getAttribute("aria-invalid")) === null, "the field stays marked after a simulation that ran");
  check(await page.locator("#simulate-result").isVisible(), "the simulation's result is not shown");
  await everywhere(page, "rules page with a simulation");
  await busy(page, out, { check, fail }, c);
}

// busy: while a long simulation runs (started here through the API), the
// page's own is refused with 503 and the page says so, with when to try
// again. Should the page's short one take the slot first, it tries again.
async function busy(page, out, { check, fail }, c) {
  const long = { params: { "bp-crisis": { systolic_max: 180 } }, patients: 1000, weeks: 8, profiles: ["normal"] };
  for (let attempt = 1; attempt <= 5 && !out.simulation_busy; attempt++) {
    const bg = fetch(`${BASE_URL}/v1/rules/simulate`, { method: "POST", body: JSON.stringify(long),
      headers: { Authorization: `Bearer ${TOKEN_ADMIN}`, "Content-Type": "application/json" } }).then((r) => r.status);
    await page.waitForTimeout(500);
    const before = c.problems.length;
    await page.getByRole("button", { name: "Run simulation" }).click();
    await page.locator('#simulate-form:not([data-state="running"])').waitFor({ timeout: 120000 });
    if ((await page.locator("#simulate-form").getAttribute("data-state")) === "busy") {
      out.simulation_busy = { text: await page.locator("#simulate-status").textContent(), attempt };
      await everywhere(page, "rules page while the server is busy");
      forgive(c, before, 503);
    }
    out.simulation_long = await bg;
  }
  if (!out.simulation_busy) fail("the page's simulation was never refused while another ran");
}

async function rules(page, out, { check, fail }, c) {
  await openSection(page, "rules", check);
  await page.locator('#rules-table tr[data-rule-id="no-weight-36h"]').waitFor({ timeout: 5000 }).catch(async () =>
    fail(`rules: ${await page.locator("#rules-error").textContent()}`));
  await page.getByRole("button", { name: "Disable no-weight-36h" }).click();
  await page.locator('#rules-table tr[data-rule-id="no-weight-36h"][data-enabled="false"]').waitFor({ timeout: 5000 }).catch(async () =>
    fail(`disable rule: ${await page.locator("#rules-error").textContent()}`));
  out.rule_disabled = "no-weight-36h";
  await page.getByRole("button", { name: "Edit the parameters of bp-crisis" }).click();
  await simulation(page, out, { check, fail }, c);
  await page.locator("#param-systolic_max").fill("185");
  await page.getByRole("button", { name: "Save parameters" }).click();
  await page.locator("#rules-result", { hasText: "Saved bp-crisis as v" }).waitFor({ timeout: 5000 }).catch(async () =>
    fail(`save parameters: ${await page.locator("#rules-error").textContent()}`));
  out.params_saved = "bp-crisis";
  // The backtest's date is the start of that day in team A's time zone.
  await page.locator("#backtest-rule").selectOption("spo2-critical");
  await page.locator("#backtest-team").selectOption(TEAM_A);
  await page.getByRole("button", { name: "Run backtest" }).click();
  await page.locator('#backtest-facts[data-rule="spo2-critical"]').waitFor({ timeout: 30000 }).catch(async () =>
    fail(`backtest: ${await page.locator("#rules-error").textContent()}`));
  out.backtest_rule = "spo2-critical";
  out.backtest_since = await page.locator("#backtest-facts").getAttribute("data-since");
  out.backtest_day = await page.locator("#backtest-since").inputValue();
  out.backtest_alerts = Number(await page.locator("#backtest-facts").getAttribute("data-alerts"));
  check(/Alerts it would have raised/.test(await page.locator("#backtest-result").innerText()), "the backtest result is not shown");
  check((await page.locator("#rule-errors tbody tr").count()) > 0, "the evaluation errors table is empty (not even its note)");
  await everywhere(page, "rules page with a backtest");
}

// audit reads the audit newest first, then filters it by person and patient.
async function audit(page, out, { check, fail }) {
  await openSection(page, "audit", check);
  await page.locator("#audit-table tbody tr").first().waitFor({ timeout: 5000 }).catch(async () =>
    fail(`audit: ${await page.locator("#audit-error").textContent()}`));
  out.audit_ids = await page.locator("#audit-table tbody tr").evaluateAll((rs) => rs.map((r) => r.dataset.auditId));
  const ids = out.audit_ids.map(Number);
  check(ids.every((id, i) => i === 0 || id < ids[i - 1]), `the audit is not newest first: ${ids.slice(0, 5)}`);
  check((await page.locator("#audit-table tbody td:not(.ids)").allInnerTexts()).every((t) => !/[0-9a-f]{8}-[0-9a-f]{4}-/.test(t)),
    "the audit shows ids outside the details line");
  await everywhere(page, "audit page");
  await page.locator("#audit-actor").selectOption({ label: "Dr Ada Osei (clinician)" });
  await page.locator("#audit-patient").fill("Sam Lee");
  await page.locator("#audit-patient").press("Enter");
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll("#audit-table tbody tr")];
    return document.getElementById("audit-loading").hidden && rows.length > 0 && rows.every((r) => r.innerText.includes("Dr Ada Osei"));
  }, null, { timeout: 5000 }).catch(async () => fail(`audit filter: ${await page.locator("#audit-error").textContent()}`));
  const rows = await page.locator("#audit-table tbody tr").allInnerTexts();
  check(rows.length > 0 && rows.every((r) => r.includes("Dr Ada Osei") && r.includes("Sam Lee")),
    `the audit filtered by person and patient: ${rows.slice(0, 3).join(" | ")}`);
  out.audit_filtered = rows.length;
}

// adminPages signs in as an admin and uses every administration page.
export async function adminPages(openConsole, browser, token, result, helpers) {
  const c = await openConsole(browser, token);
  const { page } = c;
  const out = {};
  await page.locator("#nav-users").waitFor({ state: "visible", timeout: 5000 });
  await users(page, out, helpers);
  await patients(page, out, helpers);
  await teams(page, out, helpers);
  await rules(page, out, helpers, c);
  await audit(page, out, helpers);

  // Jobs: the dashboard opens in a new tab, signed in by its cookie.
  await openSection(page, "jobs", helpers.check);
  await everywhere(page, "jobs page");
  const [popup] = await Promise.all([page.context().waitForEvent("page"), page.getByRole("button", { name: "Open the job dashboard" }).click()]);
  await popup.waitForLoadState("domcontentloaded");
  helpers.check(popup.url() === `${BASE_URL}/riverui/`, `the dashboard opened at ${popup.url()}`);
  out.jobs_title = await popup.title();
  out.jobs_states = await popup.evaluate(() => fetch("/riverui/api/states").then((r) => r.status));
  await popup.close();

  helpers.check(page.url() === `${BASE_URL}/`, `the address changed: ${page.url()}`);
  helpers.check((await page.title()) === "Tend triage console", "the title changed");
  result.admin = out;
  return c;
}

// leadBroadcast signs in as a lead of team A (no admin) and broadcasts to
// the team's patients from the care-team page.
export async function leadBroadcast(openConsole, browser, token, result, { check, fail }) {
  const c = await openConsole(browser, token);
  const { page } = c;
  await page.locator("#nav-teams").waitFor({ state: "visible", timeout: 5000 }).catch(() =>
    fail("a lead has no care-team page"));
  check(await page.locator("#nav-users").isHidden(), "a lead sees the users page");
  await openSection(page, "teams", check);
  const row = page.locator(`#teams-table tr[data-team-id="${TEAM_A}"]`);
  await row.waitFor({ timeout: 5000 }).catch(async () =>
    fail(`lead's care teams: ${await page.locator("#teams-error").textContent()}`));
  check((await row.getByRole("button", { name: /^Edit / }).count()) === 0, "a lead is offered the team editor");
  await everywhere(page, "a lead's care-team page");
  await row.getByRole("button", { name: /^Broadcast to the patients of / }).click();
  check(await page.evaluate(() => document.activeElement?.id === "broadcast-body"), "focus did not move to the broadcast's text");
  await page.keyboard.type(LEAD_BROADCAST_TEXT);
  await page.getByRole("button", { name: "Send broadcast" }).click();
  await page.locator('#broadcast-form[data-status="completed"]').waitFor({ timeout: 30000 }).catch(async () =>
    fail(`lead's broadcast: ${await page.locator("#broadcast-progress").textContent()} ${await page.locator("#broadcast-error").textContent()}`));
  result.lead_broadcast = { id: await page.locator("#broadcast-form").getAttribute("data-broadcast-id"),
    progress: await page.locator("#broadcast-progress").textContent() };

  // The rule page: the lead changes nothing, but simulates a change.
  await openSection(page, "rules", check);
  await page.locator('#rules-table tr[data-rule-id="bp-crisis"]').waitFor({ timeout: 5000 }).catch(async () =>
    fail(`lead's rules: ${await page.locator("#rules-error").textContent()}`));
  check((await page.locator("#rules-table").getByRole("button", { name: /^(Disable|Enable) / }).count()) === 0, "a lead is offered to disable rules");
  check(await page.locator("#backtest-form").isHidden(), "a lead is offered a backtest");
  await page.getByRole("button", { name: "Try the parameters of bp-crisis" }).click();
  check(await page.locator("#params-save").isHidden(), "a lead is offered to save a rule");
  await page.locator("#param-diastolic_max").fill("125");
  result.lead_simulation = await simulate(page, fail, "lead's simulation");
  await everywhere(page, "a lead's rules page with a simulation");
  return c;
}
