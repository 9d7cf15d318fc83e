// Drives the web UI in Debian's chromium (playwright-core) and prints, as
// JSON, what a person would see; tests/e2e/session.rs asserts on it.
//   node web_ui.js <ui url with #token=...> <job id to open> <screenshot dir>
// It saves overview.png, job.png and taskmanager.png there, to look at.
"use strict";
const { chromium } = require("playwright-core");

const rows = (table) => [...table.querySelectorAll("tr")].slice(1).map((r) => [...r.cells].map((c) => c.textContent.trim()));

// Through YARN's web proxy (no token: the AM trusts the proxy's host):
//   node web_ui.js --proxy <tracking url> <screenshot dir>
// It saves proxy.png, and fetches every TaskManager's log link.
async function throughProxy(browser, url, shots, seen) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  await page.goto(url);
  await page.waitForSelector("body[data-ready='1'] #jobs");
  // The job's TaskManagers register within a few polls.
  await page.waitForSelector("#taskmanagers a.log", { timeout: 20000 });
  seen.path = await page.evaluate(() => location.pathname);
  seen.jobs = await page.$eval("#jobs", rows);
  seen.taskmanagers = await page.$$eval("#taskmanagers tr", (trs) => trs.length - 1);
  seen.logLinks = [];
  for (const href of await page.$$eval("#taskmanagers a.log", (as) => as.map((a) => a.href))) {
    const r = await page.request.get(href);
    seen.logLinks.push([href, r.status(), (await r.text()).slice(0, 2000)]);
  }
  await page.screenshot({ path: `${shots}/proxy.png`, fullPage: true });
}

(async () => {
  if (process.argv[2] === "--proxy") {
    const [url, shots] = process.argv.slice(3);
    const browser = await chromium.launch({
      executablePath: process.env.YF_CHROMIUM || "/usr/bin/chromium",
      args: ["--no-sandbox", "--headless=new"],
    });
    const seen = { errors: [] };
    try {
      await throughProxy(browser, url, shots, seen);
    } finally {
      await browser.close();
    }
    console.log(JSON.stringify(seen));
    return;
  }
  const [url, job, shots] = process.argv.slice(2);
  const shot = (page, name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  const browser = await chromium.launch({
    executablePath: process.env.YF_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--headless=new"],
  });
  const seen = { errors: [] };
  try {
    const page = await browser.newPage();
    page.on("pageerror", (e) => seen.errors.push(String(e)));
    await page.goto(url);
    await page.waitForSelector("body[data-ready='1'] #jobs");
    seen.hashAfterLoad = await page.evaluate(() => location.hash);
    seen.jobs = await page.$eval("#jobs", rows);
    seen.taskmanagers = await page.$eval("#taskmanagers", rows);
    await shot(page, "overview");

    await page.click(`#jobs a[href="#/jobs/${job}"]`);
    await page.waitForSelector("#subtasks");
    seen.vertices = await page.$$eval("#graph .vertex", (vs) => vs.map((v) => v.dataset.vertex));
    seen.subtasks = await page.$eval("#subtasks", rows);
    await shot(page, "job");

    // From the subtask to its TaskManager, whose log the AM serves.
    await page.click("#subtasks a[href^='#/taskmanagers/']");
    await page.waitForSelector("#log");
    seen.log = await page.$eval("#log", (p) => p.textContent);
    await shot(page, "taskmanager");

    // A reload keeps the token (sessionStorage), though the URL no longer has it.
    await page.reload();
    await page.waitForSelector("body[data-ready='1'] #log");
    seen.reloaded = true;

    // Without the token: the page loads, the data does not.
    const stranger = await browser.newPage();
    await stranger.goto(url.split("#")[0]);
    await stranger.waitForFunction(() => document.getElementById("status").textContent.includes("cannot read"));
    seen.withoutToken = await stranger.$eval("#status", (s) => s.textContent);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(seen));
})().catch((e) => {
  console.error(String(e && e.stack || e));
  process.exit(1);
});
