// The operators' part of the browser test: an admin uses every
// administration page (users and tokens, patients and devices, care teams
// and a broadcast, rules and a backtest, the audit, the job dashboard), and
// a lead of team A (not an admin) broadcasts from the care-team page. Each
// page is checked at every viewport with axe. What the pages did is checked
// through the API by the Go side.
import { everywhere } from "./checks.mjs";

const { BASE_URL, DISABLE_USER, TEAM_A, BROADCAST_TEXT, LEAD_BROADCAST_TEXT } = process.env;

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
  await page.getByRole("button", { name: "Save team" }).click();
  await page.locator("#teams-result:not(:empty)").waitFor({ timeout: 5000 }).catch(async () =>
    fail(`save team: ${await page.locator("#teams-error").textContent()}`));
  out.team_saved = TEAM_A;
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

async function rules(page, out, { check, fail }) {
  await openSection(page, "rules", check);
  await page.locator('#rules-table tr[data-rule-id="no-weight-36h"]').waitFor({ timeout: 5000 }).catch(async () =>
    fail(`rules: ${await page.locator("#rules-error").textContent()}`));
  await page.getByRole("button", { name: "Disable no-weight-36h" }).click();
  await page.locator('#rules-table tr[data-rule-id="no-weight-36h"][data-enabled="false"]').waitFor({ timeout: 5000 }).catch(async () =>
    fail(`disable rule: ${await page.locator("#rules-error").textContent()}`));
  out.rule_disabled = "no-weight-36h";
  await page.getByRole("button", { name: "Edit the parameters of bp-crisis" }).click();
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
  await rules(page, out, helpers);
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
  return c;
}
