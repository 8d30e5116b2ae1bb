// Drives examples/web/index.html in a real headless Chromium (Debian's
// /usr/bin/chromium through playwright-core; no browser download): the page
// connects to the psyne ws:// listener, renders the messages it publishes
// and its metrics, and sends one message back through the form.
// Prints one JSON line with what the DOM showed; 70-web.sh checks it and
// the psyne side.
//   node browser.mjs http://127.0.0.1:PORT/
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const url = process.argv[2];
const profile = mkdtempSync(join(tmpdir(), "psyne-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  chromiumSandbox: false, // --no-sandbox: CI runs as root
  args: [
    "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(30000);
  await page.goto(url);
  // Live messages from the listener, and its metrics.
  await page.waitForSelector("#messages li");
  await page.waitForSelector("#m-peers");
  await page.fill("#text", "hello from chromium");
  await page.click("#send");
  // The listener echoes what the page sent to every page.
  await page.waitForFunction(() =>
    [...document.querySelectorAll("#messages li")].some((li) => li.textContent === "echo: hello from chromium"));
  const shown = await page.evaluate(() => ({
    status: document.getElementById("status").textContent,
    messages: [...document.querySelectorAll("#messages li")].map((li) => li.textContent),
    peers: Number(document.querySelector("#m-peers td:last-child").textContent),
  }));
  console.log(JSON.stringify(shown));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
