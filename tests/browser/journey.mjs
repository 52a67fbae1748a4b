// The citizen portal in headless Chromium: the whole journey of a citizen (register, verify, log in, apply for the
// resident parking permit with an attachment, pay through the simulator's Paypage, follow the case, answer an
// information request, open the decision in the Postfach), axe-core on every page in German and English, a
// keyboard-only pass through the application form, and the journey once more with JavaScript disabled.
//
// Driven by tests/tests/portal_browser.rs, which starts the service and answers requests on stdin: a line
// `@@ <command> <json>` on stdout asks the test (for a mail, or for a case worker's step through the API); the
// answer is one JSON line on stdin. Everything else on stdout is the log.

import { chromium } from "playwright-core";
import axe from "axe-core";
import { createInterface } from "node:readline";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BASE = process.env.BASE_URL;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const EMAIL = `erika.${Date.now()}@example.de`;
const PASSWORD = "Sommerwiese am Elsterbecken 2026";
const PDF = "%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";

// --- talking to the test -------------------------------------------------------------------------------------
const answers = [];
let waiting = null;
const input = createInterface({ input: process.stdin });
input.on("line", (line) => {
  const value = JSON.parse(line);
  if (waiting) {
    const resolve = waiting;
    waiting = null;
    resolve(value);
  } else {
    answers.push(value);
  }
});
function ask(command, args) {
  process.stdout.write(`@@ ${command} ${JSON.stringify(args)}\n`);
  return new Promise((resolve) => {
    if (answers.length) resolve(answers.shift());
    else waiting = resolve;
  });
}
function log(...parts) {
  process.stdout.write(parts.join(" ") + "\n");
}
function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

// --- axe-core on every page ----------------------------------------------------------------------------------
const audited = new Map(); // url (without lang) → label
let violations = [];
async function audit(page, label) {
  // page.evaluate runs outside the page's Content-Security-Policy, so the strict policy stays in force.
  await page.evaluate(axe.source);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  const lang = await page.evaluate(() => document.documentElement.lang);
  for (const v of result.violations) {
    violations.push(`${label} [${lang}] ${page.url()}: ${v.id} (${v.impact}) ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  }
  log(`axe ${label} [${lang}]: ${result.violations.length} violations, ${result.passes.length} rules passed`);
  const url = new URL(page.url());
  url.searchParams.delete("lang");
  if (!audited.has(url.pathname + url.search)) audited.set(url.pathname + url.search, label);
}

function watch(page, label) {
  const problems = [];
  page.on("console", (msg) => {
    // A page answered with 4xx (a form with errors) is reported as a failed resource: that is the page itself.
    if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) {
      problems.push(`${label}: console error: ${msg.text()}`);
    }
  });
  // Stylesheet, script, images: every resource a page loads must be there (and allowed by the CSP).
  page.on("response", (response) => {
    if (response.request().resourceType() !== "document" && response.status() >= 400) {
      problems.push(`${label}: ${response.status()} for ${response.url()}`);
    }
  });
  page.on("requestfailed", (request) => {
    if (request.resourceType() !== "document") problems.push(`${label}: ${request.url()} failed`);
  });
  page.on("pageerror", (err) => problems.push(`${label}: page error: ${err.message}`));
  return problems;
}

// WCAG 1.4.10 (reflow): at 320 CSS pixels — a phone, or 400 % zoom — nothing scrolls sideways.
async function reflows(page, label) {
  const size = page.viewportSize();
  await page.setViewportSize({ width: 320, height: 640 });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.setViewportSize(size);
  check(wide <= 321, `${label} scrolls sideways at 320 px: ${wide} px wide`);
}

async function mailLink(address, count, path) {
  const mail = await ask("mail", { to: address, count });
  const token = mail.token;
  check(token, `a token in the mail to ${address}`);
  check(mail.body.includes(`${path}?token=`), `the mail links to ${path}: ${mail.body}`);
  return `${BASE}${path}?token=${token}`;
}

// --- keyboard only ---------------------------------------------------------------------------------------------
async function tabTo(page, selector, limit = 60) {
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press("Tab");
    const here = await page.evaluate((s) => document.activeElement && document.activeElement.matches(s), selector);
    if (here) return;
  }
  throw new Error(`the keyboard does not reach ${selector}`);
}

async function fillFormByKeyboard(page) {
  // From the top of the page: the skip link first, then through the form in order.
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.classList.contains("skip")), "the skip link comes first");
  await page.keyboard.press("Enter");
  await tabTo(page, "#f-antragsteller-vorname");
  await page.keyboard.type("Erika");
  await page.keyboard.press("Tab");
  await page.keyboard.type("Mustermann");
  await page.keyboard.press("Tab");
  await page.keyboard.type("Markt");
  await page.keyboard.press("Tab");
  await page.keyboard.type("1");
  await page.keyboard.press("Tab");
  await page.keyboard.type("04109");
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.id === "f-parkgebiet"), "the zone select follows");
  await page.keyboard.press("ArrowDown"); // A1
  await page.keyboard.press("Tab");
  await page.keyboard.type("L-AB 1234");
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.name === "/fahrzeug_halter"), "the keeper radios follow");
  await page.keyboard.press("Space"); // selbst
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.id === "f-laufzeit_jahre"), "the years select follows");
  await page.keyboard.press("ArrowDown"); // 1
  // To "save as draft" (after "continue"), and send with the keyboard.
  await tabTo(page, 'button[value="save"]', 3);
  await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
}

async function fillFormWithoutKeyboardHelp(page) {
  await page.fill("#f-antragsteller-vorname", "Max");
  await page.fill("#f-antragsteller-nachname", "Mustermann");
  await page.fill("#f-anschrift-strasse", "Markt");
  await page.fill("#f-anschrift-hausnummer", "2");
  await page.fill("#f-anschrift-plz", "04109");
  await page.selectOption("#f-parkgebiet", "B1");
  await page.fill("#f-kennzeichen", "L-MM 42");
  await page.check("#f-fahrzeug_halter");
  await page.selectOption("#f-laufzeit_jahre", "2");
}

// --- the journey -----------------------------------------------------------------------------------------------
async function journey(browser, pdfPath) {
  const context = await browser.newContext({ locale: "de-DE" });
  const page = await context.newPage();
  const problems = watch(page, "journey");

  await page.goto(`${BASE}/`);
  check((await page.textContent("h1")).includes("Leistungen suchen"), "German by default");
  await audit(page, "start");
  await page.fill("#q", "Parkausweis");
  await Promise.all([page.waitForNavigation(), page.click("form.search button")]);
  await audit(page, "search results");
  await Promise.all([page.waitForNavigation(), page.click('a[href="/leistungen/bewohnerparkausweis"]')]);
  await audit(page, "procedure");

  // Register; the address is verified from the mail.
  await Promise.all([page.waitForNavigation(), page.click('a[href="/registrieren"]')]);
  await audit(page, "register");
  await page.fill("#name", "Erika Mustermann");
  await page.fill("#email", EMAIL);
  await page.fill("#password", "kurz");
  await Promise.all([page.waitForNavigation(), page.click("main form button")]);
  check(await page.isVisible("#error-summary"), "a weak password is named in the error summary");
  check(await page.evaluate(() => document.activeElement.id === "error-summary"), "the error summary takes the focus");
  await audit(page, "register with errors");
  await page.fill("#password", PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click("main form button")]);
  await audit(page, "register sent");
  const verify = await mailLink(EMAIL, 1, "/verify-email");
  await page.goto(verify);
  await audit(page, "verify e-mail");
  await Promise.all([page.waitForNavigation(), page.click("main form button")]);
  check((await page.textContent("h1")).includes("bestätigt"), "the address is verified on POST");

  // Log in, agree to electronic delivery of decisions.
  await page.goto(`${BASE}/login`);
  await audit(page, "login");
  await page.fill("#email", EMAIL);
  await page.fill("#password", PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click("main form button")]);
  check(page.url().endsWith("/antraege"), `after the login: ${page.url()}`);
  await audit(page, "my applications (empty)");
  await page.goto(`${BASE}/konto`);
  await audit(page, "account");
  await reflows(page, "account");
  await Promise.all([page.waitForNavigation(), page.click('form[action="/konto/elektronische-zustellung"] button')]);
  check((await page.textContent(".notice")).includes("Postfach"), "electronic delivery agreed");

  // Apply: the form, its errors, the keyboard-only pass, the upload, the review, the submission.
  await page.goto(`${BASE}/leistungen/bewohnerparkausweis`);
  await Promise.all([page.waitForNavigation(), page.click('form[action$="/antrag"] button')]);
  const applicationUrl = page.url();
  const applicationId = applicationUrl.split("/").pop();
  await audit(page, "application form");
  await Promise.all([page.waitForNavigation(), page.click('button[value="review"]')]);
  check(await page.isVisible("#error-summary"), "missing fields are summarised");
  const summaryLinks = await page.$$eval("#error-summary a", (links) => links.map((a) => a.getAttribute("href")));
  check(summaryLinks.includes("#f-anschrift-plz"), `the summary links to the fields: ${summaryLinks}`);
  check(await page.isVisible("#f-anschrift-plz-error"), "the error is shown at the field too");
  await audit(page, "application form with errors");
  await page.goto(applicationUrl);
  await fillFormByKeyboard(page);
  check((await page.textContent(".notice")).includes("gespeichert"), "saved as a draft by keyboard");
  check((await page.inputValue("#f-kennzeichen")) === "L-AB 1234", "the typed values are kept");
  await page.selectOption("#document_type", "fahrzeugschein");
  await page.setInputFiles("#document", pdfPath);
  await Promise.all([page.waitForNavigation(), page.click("form.upload button")]);
  check((await page.textContent(".documents")).includes("zulassung.pdf"), "the document is attached");
  await audit(page, "application form with a document");
  await reflows(page, "application form");
  await Promise.all([page.waitForNavigation(), page.click('button[value="review"]')]);
  check(page.url().endsWith("/pruefen"), `on to the review: ${page.url()}`);
  await audit(page, "review");
  await reflows(page, "review");
  await Promise.all([page.waitForNavigation(), page.click('form[action$="/absenden"] button')]);
  const caseNumber = (await page.textContent(".notice .case-number")).trim();
  check(/^ordnungsamt-\d{4}-\d{6}$/.test(caseNumber), `a case number at once: ${caseNumber}`);
  await audit(page, "submitted");
  await reflows(page, "application");
  const receipt = await page.request.get(`${BASE}/antraege/${applicationId}/quittung`);
  check([200, 202].includes(receipt.status()), `the receipt: ${receipt.status()}`);

  // Pay through the simulator's Paypage and come back.
  await Promise.all([page.waitForNavigation(), page.click('form[action$="/bezahlen"] button')]);
  check((await page.content()).includes("SIMULATOR"), `on the Paypage: ${page.url()}`);
  await Promise.all([page.waitForNavigation(), page.click('button[value="pay"]')]);
  check(page.url().includes("/zahlung/"), `back on the portal: ${page.url()}`);
  for (let i = 0; i < 20 && (await page.getAttribute("[data-payment-state]", "data-payment-state")) !== "paid"; i++) {
    await page.waitForTimeout(500);
    await page.reload();
  }
  check((await page.getAttribute("[data-payment-state]", "data-payment-state")) === "paid", "the payment is confirmed");
  await audit(page, "payment returned");
  await Promise.all([page.waitForNavigation(), page.click(`a[href="/antraege/${applicationId}"]`)]);
  check((await page.textContent("dd.case-number")).trim() === caseNumber, "the case number on the status page");
  check((await page.$$(".timeline li")).length >= 1, "a timeline");

  // A case worker asks for more; the citizen answers with a changed field and a document.
  await ask("staff_request", { application_id: applicationId });
  await page.reload();
  check(await page.isVisible(`form[action*="/nachforderungen/"]`), "the open information request");
  await audit(page, "information request");
  await page.fill('form[action*="/nachforderungen/"] input[name="/kennzeichen"]', "L-AB 1235");
  await page.setInputFiles('form[action*="/nachforderungen/"] input[type="file"]', pdfPath);
  await page.fill('form[action*="/nachforderungen/"] textarea[name="comment"]', "Neues Kennzeichen, Erklärung anbei.");
  await Promise.all([page.waitForNavigation(), page.click('form[action*="/nachforderungen/"] button')]);
  check((await page.textContent(".notice")).includes("eingegangen"), "the answer is received");
  await audit(page, "answered");

  // The decision, opened from the Postfach.
  await ask("staff_decide", { application_id: applicationId });
  let found = false;
  for (let i = 0; i < 30 && !found; i++) {
    await page.goto(`${BASE}/postfach`);
    found = (await page.textContent("main")).includes("Bescheid");
    if (!found) await page.waitForTimeout(500);
  }
  check(found, "the decision is in the Postfach");
  await audit(page, "postfach");
  await reflows(page, "postfach");
  await Promise.all([page.waitForNavigation(), page.click("main table a")]);
  await audit(page, "decision");
  const documentLink = await page.getAttribute('main a[href*="/anhaenge/"]', "href");
  const download = await page.request.get(`${BASE}${documentLink}`);
  check(download.status() === 200, `the decision downloads: ${download.status()}`);
  check(download.headers()["content-type"].startsWith("application/pdf"), "a PDF");
  await page.goto(`${BASE}/postfach/neu?antrag=${applicationId}`);
  await audit(page, "new message");
  await page.fill("#subject", "Frage zum Bescheid");
  await page.fill("#body", "Ab wann gilt der Ausweis?");
  await Promise.all([page.waitForNavigation(), page.click("main form button")]);
  check((await page.textContent(".notice")).includes("gesendet"), "the message is sent");

  for (const path of ["/barrierefreiheit", "/leichte-sprache", "/passwort-vergessen", `/antraege`]) {
    await page.goto(`${BASE}${path}`);
    await audit(page, path);
  }

  // Every page again in English.
  await page.goto(`${BASE}/?lang=en`);
  check((await page.textContent("h1")).includes("Find a service"), "English by choice");
  for (const [path, label] of [...audited]) {
    await page.goto(`${BASE}${path}`);
    await audit(page, label);
  }
  // The error states in English: a new draft sent on empty, then discarded.
  await page.goto(`${BASE}/leistungen/bewohnerparkausweis`);
  await Promise.all([page.waitForNavigation(), page.click('form[action$="/antrag"] button')]);
  await Promise.all([page.waitForNavigation(), page.click('button[value="review"]')]);
  check((await page.textContent("#error-summary")).includes("There is a problem"), "errors in English");
  await audit(page, "application form with errors");
  await Promise.all([page.waitForNavigation(), page.click('form[action$="/verwerfen"] button')]);

  // Logging out ends the session.
  await Promise.all([page.waitForNavigation(), page.click('form[action="/logout"] button')]);
  await page.goto(`${BASE}/antraege`);
  check(page.url().includes("/login"), "after the logout, personal pages ask for a login");
  await audit(page, "login");
  check(problems.length === 0, problems.join("\n"));
  await context.close();
  return { applicationId, caseNumber };
}

// --- once more without JavaScript ------------------------------------------------------------------------------
async function withoutJavaScript(browser, pdfPath) {
  const context = await browser.newContext({ locale: "de-DE", javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${BASE}/login`);
  await page.fill("#email", EMAIL);
  await page.fill("#password", PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click("main form button")]);
  await page.goto(`${BASE}/leistungen/bewohnerparkausweis`);
  await Promise.all([page.waitForNavigation(), page.click('form[action$="/antrag"] button')]);
  await Promise.all([page.waitForNavigation(), page.click('button[value="review"]')]);
  check(await page.isVisible("#error-summary"), "the error summary without JavaScript");
  await fillFormWithoutKeyboardHelp(page);
  await Promise.all([page.waitForNavigation(), page.click('button[value="save"]')]);
  await page.selectOption("#document_type", "fahrzeugschein");
  await page.setInputFiles("#document", pdfPath);
  await Promise.all([page.waitForNavigation(), page.click("form.upload button")]);
  await Promise.all([page.waitForNavigation(), page.click('button[value="review"]')]);
  await Promise.all([page.waitForNavigation(), page.click('form[action$="/absenden"] button')]);
  const caseNumber = (await page.textContent(".notice .case-number")).trim();
  check(/^ordnungsamt-\d{4}-\d{6}$/.test(caseNumber), `a case number without JavaScript: ${caseNumber}`);
  await Promise.all([page.waitForNavigation(), page.click('form[action$="/bezahlen"] button')]);
  await Promise.all([page.waitForNavigation(), page.click('button[value="pay"]')]);
  check(page.url().includes("/zahlung/"), "back from the Paypage without JavaScript");
  await context.close();
  return caseNumber;
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
});
try {
  const dir = mkdtempSync(join(tmpdir(), "amtsweg-browser-"));
  const pdfPath = join(dir, "zulassung.pdf");
  writeFileSync(pdfPath, PDF);
  const { caseNumber } = await journey(browser, pdfPath);
  log(`journey done: ${caseNumber}`);
  const second = await withoutJavaScript(browser, pdfPath);
  log(`without JavaScript: ${second}`);
  check(violations.length === 0, `axe-core found WCAG 2.1 A/AA violations:\n${violations.join("\n")}`);
  log(`axe-core: ${audited.size} pages in German and English, no violations`);
  await ask("done", {});
} finally {
  await browser.close();
  // The open standard input would keep the process alive.
  input.close();
}
