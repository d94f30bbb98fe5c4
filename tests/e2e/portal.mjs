// The seed journey in a real browser (headless Chromium driven by playwright-core): an admin
// creates and publishes EchoWebSocket in the publisher, a new subscriber signs up in the
// developer portal, runs the key generation wizard and copies the token, then echoes a message
// through the gateway from the "Try it" console. The failure paths a user meets are walked too:
// a wrong password, invalid form fields, a form without its CSRF field, an expired session, and
// a subscriber opening a publisher page.
//
// Run by crates/wsgate/tests/it/portal/journey.rs, which starts `wsgate serve` and an echo
// upstream and passes their addresses in the environment:
//   WSGATE_CONTROL_URL        https://127.0.0.1:PORT (the control plane: portals + REST)
//   WSGATE_WS_URL, WSGATE_WSS_URL   the gateway's listeners, ws://… and wss://…
//   WSGATE_ECHO_URL           ws://127.0.0.1:PORT, the upstream endpoint of the API
//   WSGATE_ADMIN_PASSWORD     the admin's password
//   WSGATE_CLOSED_CONTROL_URL another control plane, with control.self_signup = false
//   WSGATE_CHROMIUM           the browser (default /usr/bin/chromium)
//   WSGATE_E2E_NODE_MODULES   where playwright-core is installed (default .tools/e2e/node_modules)
//   WSGATE_SCREENSHOTS        where each step's screenshot goes
// It prints one JSON object on stdout: {"ok": true, "token": …, "commands": […], "steps": […]},
// or {"ok": false, "step": …, "error": …}, and exits 0 or 1 accordingly.

import { createRequire } from 'node:module';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const env = (name, fallback) => process.env[name] || fallback;
const modules = env('WSGATE_E2E_NODE_MODULES', path.join(here, '..', '..', '.tools', 'e2e', 'node_modules'));
const { chromium } = createRequire(path.join(modules, 'noop.js'))('playwright-core');

const control = env('WSGATE_CONTROL_URL');
const wsUrl = env('WSGATE_WS_URL');
const wssUrl = env('WSGATE_WSS_URL');
const echoUrl = env('WSGATE_ECHO_URL');
const adminPassword = env('WSGATE_ADMIN_PASSWORD');
const closedControl = env('WSGATE_CLOSED_CONTROL_URL');
const shots = env('WSGATE_SCREENSHOTS', path.join(here, '..', '..', 'target', 'e2e', 'screenshots'));
for (const [name, value] of Object.entries({ control, wsUrl, wssUrl, echoUrl, adminPassword, closedControl })) {
  if (!value) fail('setup', new Error(`missing environment: ${name}`));
}
mkdirSync(shots, { recursive: true });

const steps = [];
let page = null;
let current = 'setup';

function fail(step, error) {
  process.stdout.write(JSON.stringify({ ok: false, step, error: String(error && error.stack || error), url: page && page.url() }) + '\n');
  process.exit(1);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// One step of the journey: its name, what it does, and a screenshot of where it ended.
async function step(name, action) {
  current = name;
  const started = Date.now();
  await action();
  const file = path.join(shots, `${String(steps.length + 1).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  steps.push({ name, ms: Date.now() - started, screenshot: file });
}

async function expectText(selector, text) {
  const content = (await page.locator(selector).first().textContent({ timeout: 10000 })) || '';
  check(content.includes(text), `${selector} should say "${text}", says "${content.trim()}"`);
}

async function goto(url, status = 200) {
  const response = await page.goto(url);
  check(response.status() === status, `GET ${url} answered ${response.status()}, expected ${status}`);
  return response;
}

// Submits a form by clicking its button, and checks the status of the page it lands on.
async function submit(button, status = 200) {
  const [response] = await Promise.all([page.waitForNavigation(), button.click()]);
  check(response && response.status() === status, `submitting answered ${response && response.status()}, expected ${status} (${page.url()})`);
}

const userDataDir = mkdtempSync(path.join(tmpdir(), 'wsgate-e2e-chromium-'));
let browser;
try {
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: env('WSGATE_CHROMIUM', '/usr/bin/chromium'),
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    // The control plane and the wss listener use the certificate wsgate generated.
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 900 },
  });
  await browser.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: control });
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

async function journey(context) {
  // ---- Publisher ------------------------------------------------------------------------
  await step('publisher-wrong-password', async () => {
    await goto(`${control}/publisher`);
    check(page.url().includes('/publisher/login'), 'an anonymous visit is sent to sign in');
    await expectText('.notice', 'Please sign in');
    await page.getByLabel('User name').fill('admin');
    await page.getByLabel('Password').fill('not-the-password');
    await submit(page.getByRole('button', { name: 'Sign in' }), 401);
    await expectText('[role=alert]', 'Wrong user name or password');
  });

  await step('publisher-api-list', async () => {
    await page.getByLabel('Password').fill(adminPassword);
    await submit(page.getByRole('button', { name: 'Sign in' }));
    check(new URL(page.url()).pathname === '/publisher', `signed in, lands on the API list (${page.url()})`);
    await expectText('h1', 'APIs');
    await expectText('.who', 'admin');
  });

  await step('publisher-create-form', async () => {
    await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Create API' }).click()]);
    await expectText('h1', 'Create API');
    // The admin holds every role: both buttons are offered.
    check(await page.getByRole('button', { name: 'Create', exact: true }).isVisible(), 'CREATE is shown');
    check(await page.getByRole('button', { name: 'Create & publish' }).isVisible(), 'CREATE & PUBLISH is shown');
  });

  await step('publisher-invalid-fields', async () => {
    await page.getByLabel('Name').fill('EchoWebSocket');
    await page.getByLabel('Context').fill('echowebsocket');
    await page.getByLabel('Version').fill('1 0');
    await page.getByLabel('Endpoint 1').fill('http://127.0.0.1:1');
    await submit(page.getByRole('button', { name: 'Create & publish' }), 422);
    await expectText('#f-context-error', "must start with '/'");
    await expectText('#f-version-error', '1 0');
    await expectText('#f-endpoint-0-error', 'ws://');
    await expectText('#plans-error', 'at least one business plan');
    check((await page.getByLabel('Context').getAttribute('aria-invalid')) === 'true', 'the context input is marked invalid');
    check((await page.getByLabel('Name').inputValue()) === 'EchoWebSocket', 'what was typed is kept');
  });

  let apiPath;
  await step('publisher-overview', async () => {
    await page.getByLabel('Context').fill('/echowebsocket');
    await page.getByLabel('Version').fill('1.0');
    await page.getByLabel('Endpoint 1').fill(echoUrl);
    await page.getByLabel('Gold').check();
    await page.getByLabel('Silver').check();
    await submit(page.getByRole('button', { name: 'Create & publish' }));
    apiPath = new URL(page.url()).pathname;
    check(/^\/publisher\/apis\/[0-9a-f]+$/.test(apiPath), `lands on the overview (${page.url()})`);
    await expectText('h1', 'EchoWebSocket 1.0');
    await expectText('.notice', 'created and published');
    await expectText('dl.facts', 'PUBLISHED');
    await expectText('dl.facts', `${wsUrl}/echowebsocket/1.0`);
  });

  await step('publisher-endpoints', async () => {
    await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Configuration' }).click()]);
    check((await page.getByLabel('Endpoint 1').inputValue()) === echoUrl, 'the endpoint is shown');
    check(await page.getByLabel('Gold').isChecked(), 'Gold is offered');
    await page.getByRole('button', { name: 'Add another endpoint' }).click();
    check(await page.getByLabel('Endpoint 3').isVisible(), 'another endpoint input was added');
  });

  await step('publisher-lifecycle', async () => {
    await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Lifecycle' }).click()]);
    const moves = await page.locator('form.move button').allTextContents();
    check(JSON.stringify(moves) === JSON.stringify(['Deprecate', 'Block']), `PUBLISHED may move to Deprecate, Block only: ${moves}`);
  });

  await step('publisher-signed-out', async () => {
    await submit(page.getByRole('button', { name: 'Sign out' }));
    await expectText('.notice', 'signed out');
  });

  // ---- Developer portal -----------------------------------------------------------------
  const user = `dev-${Date.now().toString(36)}`;
  const password = 'correct-horse-battery';
  await step('devportal-signup-invalid', async () => {
    await goto(`${control}/devportal`);
    await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Create an account' }).click()]);
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByLabel('Repeat the password').fill('something-else');
    await submit(page.getByRole('button', { name: 'Create account' }), 422);
    await expectText('#f-password2-error', 'differ');
  });

  await step('devportal-catalogue', async () => {
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByLabel('Repeat the password').fill(password);
    // Sign-up does not say whether the name was free (no user enumeration): it sends the
    // browser to sign in, which then welcomes the new user.
    await submit(page.getByRole('button', { name: 'Create account' }));
    await expectText('.notice', 'sign in with it');
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill(password);
    await submit(page.getByRole('button', { name: 'Sign in' }));
    await expectText('.notice', 'Welcome');
    await page.getByLabel('Search APIs').fill('echo');
    await submit(page.getByRole('button', { name: 'Search' }));
    await expectText('ul.cards', 'EchoWebSocket');
  });

  let apiPage;
  await step('devportal-api', async () => {
    await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'EchoWebSocket' }).click()]);
    apiPage = page.url();
    await expectText('h1', 'EchoWebSocket 1.0');
    await expectText('#url-0', `${wsUrl}/echowebsocket/1.0`);
    await expectText('#url-1', `${wssUrl}/echowebsocket/1.0`);
  });

  await step('wizard-application', async () => {
    await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Key generation wizard' }).click()]);
    await expectText('ol.steps [aria-current=step]', 'Application');
    await page.getByLabel('Name of the new application').fill('EchoApp');
  });

  await step('wizard-subscribe', async () => {
    await submit(page.getByRole('button', { name: 'Next: subscribe' }));
    await expectText('ol.steps [aria-current=step]', 'Subscribe');
    const plans = await page.locator('input[name=plan]').evaluateAll((inputs) => inputs.map((i) => i.value));
    check(JSON.stringify(plans) === JSON.stringify(['Gold', 'Silver']), `the API's plans are offered: ${plans}`);
    await page.getByLabel('Gold').check();
  });

  await step('wizard-keys', async () => {
    await submit(page.getByRole('button', { name: 'Subscribe' }));
    await expectText('ol.steps [aria-current=step]', 'Keys');
    await submit(page.getByRole('button', { name: 'Generate keys' }));
    await expectText('.notice', 'shown only this once');
    check(((await page.locator('#client-secret').textContent()) || '').length >= 40, 'the secret is shown');
  });

  let token;
  let commands;
  await step('wizard-token', async () => {
    await submit(page.getByRole('button', { name: 'Next: access token' }));
    await expectText('ol.steps [aria-current=step]', 'Access token');
    token = ((await page.locator('#token').textContent()) || '').trim();
    check(token.split('.').length === 3, `the token is a JWT: ${token.slice(0, 20)}…`);
    await page.locator('button[data-copy=token]').click();
    // The clipboard answers asynchronously: wait for the button to say so (it reverts after 2.5 s).
    await page.locator('button[data-copy=token]', { hasText: 'Copied' }).waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    check(copied.trim() === token, 'the copy button put the token on the clipboard');
    commands = await page.locator('section.try-links pre code').allTextContents();
    check(commands.length === 3, `three wscat commands: ${commands.length}`);
    check(commands[0] === `wscat -c ${wsUrl}/echowebsocket/1.0 -H "Authorization: Bearer ${token}"`, `the ws command: ${commands[0]}`);
    check(commands[1] === `wscat -n -c ${wssUrl}/echowebsocket/1.0 -H "Authorization: Bearer ${token}"`, `the wss command: ${commands[1]}`);
    check(commands[2] === `wscat -c "${wsUrl}/echowebsocket/1.0?access_token=${token}"`, `the query command: ${commands[2]}`);
    check(!page.url().includes(token), 'the token is not in the URL');
  });

  let echoed;
  await step('try-it-console', async () => {
    await goto(apiPage);
    await page.getByLabel('Application').selectOption({ label: 'EchoApp' });
    await submit(page.getByRole('button', { name: 'Get a test token' }));
    check(!page.url().includes('access_token'), 'the test token is not in the page URL');
    await page.getByRole('button', { name: 'Connect', exact: true }).click();
    await page.locator('.console-state.open').waitFor();
    await page.getByLabel('Message', { exact: true }).fill('hello from the browser');
    await page.getByLabel('Message', { exact: true }).press('Enter');
    await page.locator('.console-log li.received', { hasText: 'hello from the browser' }).waitFor();
    echoed = await page.locator('.console-log li.received').first().textContent();
  });

  await step('csrf-refused', async () => {
    // A form post without the hidden CSRF field, with the session cookie: refused, nothing made.
    const response = await context.request.post(`${control}/devportal/applications`, { form: { name: 'Forged' } });
    check(response.status() === 403, `a post without the CSRF field is refused: ${response.status()}`);
    await goto(`${control}/devportal/applications`);
    check(!(await page.content()).includes('Forged'), 'the forged application was not created');
  });

  await step('publisher-forbidden', async () => {
    await goto(`${control}/publisher`, 403);
    await expectText('h1', '403');
    await expectText('main', 'creator or publisher role');
    await expectText('main', 'subscriber');
    await goto(`${control}${apiPath}/lifecycle`, 403);
  });

  await step('session-expired', async () => {
    // The session cookie the browser holds names a session the server no longer has.
    await context.addCookies([{ name: 'wsgate_session', value: 'expired-session-token', url: control, secure: true, httpOnly: true, sameSite: 'Strict' }]);
    await goto(`${control}/devportal/applications`);
    check(new URL(page.url()).pathname === '/devportal/login', `an expired session is sent to sign in (${page.url()})`);
    await expectText('.notice', 'Your session has expired');
  });

  await step('devportal-applications', async () => {
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill(password);
    await submit(page.getByRole('button', { name: 'Sign in' }));
    check(new URL(page.url()).pathname === '/devportal/applications', `back where the user was (${page.url()})`);
    await expectText('ul.cards', 'EchoApp');
    await expectText('ul.cards', 'EchoWebSocket 1.0');
    await expectText('ul.cards', 'Gold');
  });

  await step('names-are-escaped', async () => {
    // What users type is shown as text, never run as markup.
    const name = '<img src=x id=injected> & "EchoApp2"';
    await page.getByLabel('Name', { exact: true }).fill(name);
    await submit(page.getByRole('button', { name: 'Create application' }));
    await expectText('.notice', 'application was created');
    await expectText('ul.cards', name);
    check((await page.locator('#injected').count()) === 0, 'the markup in the name was not rendered');
  });

  await step('keyboard', async () => {
    // The first Tab lands on "Skip to content"; Enter moves focus to the page's content.
    await page.keyboard.press('Tab');
    const first = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
    check(first === 'Skip to content', `the first Tab stop is the skip link: ${first}`);
    await page.keyboard.press('Enter');
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
    check(focused === 'main', `the skip link moves focus to main: ${focused}`);
  });

  await step('narrow-screen', async () => {
    await page.setViewportSize({ width: 375, height: 800 });
    await goto(apiPage);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `no sideways scrolling on a phone-sized screen (${overflow}px too wide)`);
  });

  await step('signup-closed', async () => {
    // A server with control.self_signup = false says so instead of showing the form.
    await goto(`${closedControl}/devportal/login`);
    await expectText('main', 'Accounts are created by an administrator');
    await goto(`${closedControl}/devportal/signup`, 403);
    await expectText('main', 'Self sign-up is turned off');
  });

  return { token, commands, echoed, user };
}
