// What the browser scripts share: launching Debian's Chromium through playwright-core, named
// steps with a screenshot each, checks that fail with a sentence, and form submission that
// checks the status of the page it lands on. A script calls `run(journey)` and gets one JSON
// answer on stdout: {"ok": true, ...result, "steps": [...]} or {"ok": false, "step", "error"}.

import { createRequire } from 'node:module';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const env = (name, fallback) => process.env[name] || fallback;
const modules = env('WSGATE_E2E_NODE_MODULES', path.join(here, '..', '..', '.tools', 'e2e', 'node_modules'));
const { chromium } = createRequire(path.join(modules, 'noop.js'))('playwright-core');

export const shots = env('WSGATE_SCREENSHOTS', path.join(here, '..', '..', 'target', 'e2e', 'screenshots'));
const steps = [];
let current = 'setup';
export let page = null;

export function fail(step, error) {
  process.stdout.write(JSON.stringify({ ok: false, step, error: String(error && error.stack || error), url: page && page.url() }) + '\n');
  process.exit(1);
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/// The named environment variables, failing the script when one is missing.
export function required(names) {
  const values = {};
  for (const name of names) {
    values[name] = env(name);
    if (!values[name]) fail('setup', new Error(`missing environment: ${name}`));
  }
  return values;
}

// One step: its name, what it does, and a screenshot of where it ended.
export async function step(name, action) {
  current = name;
  const started = Date.now();
  await action();
  const file = path.join(shots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  steps.push({ name, ms: Date.now() - started, screenshot: file });
}

export async function expectText(selector, text) {
  const content = (await page.locator(selector).first().textContent({ timeout: 10000 })) || '';
  check(content.includes(text), `${selector} should say "${text}", says "${content.trim()}"`);
}

export async function goto(url, status = 200) {
  const response = await page.goto(url);
  check(response.status() === status, `GET ${url} answered ${response.status()}, expected ${status}`);
  return response;
}

// Submits a form by clicking its button, and checks the status of the page it lands on.
export async function submit(button, status = 200) {
  const [response] = await Promise.all([page.waitForNavigation(), button.click()]);
  check(response && response.status() === status, `submitting answered ${response && response.status()}, expected ${status} (${page.url()})`);
}

// Signs in on a portal's sign-in page (`base` is /publisher or /devportal).
export async function signIn(control, base, user, password) {
  await goto(`${control}${base}/login`);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await submit(page.getByRole('button', { name: 'Sign in' }));
}

// Runs `journey` in a fresh headless Chromium and prints the answer.
export async function run(journey) {
  mkdirSync(shots, { recursive: true });
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'wsgate-e2e-chromium-'));
  let browser;
  try {
    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: env('WSGATE_CHROMIUM', '/usr/bin/chromium'),
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      // The control plane uses the certificate wsgate generated.
      ignoreHTTPSErrors: true,
      viewport: { width: 1280, height: 900 },
    });
    page = browser.pages()[0] || await browser.newPage();
    // Generous: the test may share two cores with the rest of `cargo test`.
    page.setDefaultTimeout(20000);
    const result = await journey(browser);
    process.stdout.write(JSON.stringify({ ok: true, ...result, steps }) + '\n');
  } catch (error) {
    if (page) await page.screenshot({ path: path.join(shots, 'failure.png'), fullPage: true }).catch(() => {});
    fail(current, error);
  } finally {
    if (browser) await browser.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
}
