// The publisher's Endpoints tab in a real browser: the admin reads each endpoint's state, types
// a bad duration and sees the server's message next to the field (what was typed is kept),
// then sets timeouts, least-connections with weights, the breaker, a WebSocket probe and an
// allowed origin, and saves (run by crates/wsgate/tests/it/portal/endpoints.rs, which reads the
// stored settings back through the REST API).
//
// Environment: WSGATE_CONTROL_URL, WSGATE_ADMIN_PASSWORD, WSGATE_API_ID, WSGATE_LIVE_ENDPOINT,
// WSGATE_DEAD_ENDPOINT (as in lib.mjs for the browser).
// Answer: {"ok": true, "reported": bool, and per endpoint url: "states" (its data-state),
// "texts" (the state as the page words it), "failures" (the failures-in-a-row cell)}.

import { check, expectText, goto, page, required, run, signIn, step, submit } from './lib.mjs';

const { WSGATE_CONTROL_URL: control, WSGATE_ADMIN_PASSWORD: password, WSGATE_API_ID: apiId,
  WSGATE_LIVE_ENDPOINT: live, WSGATE_DEAD_ENDPOINT: dead } =
  required(['WSGATE_CONTROL_URL', 'WSGATE_ADMIN_PASSWORD', 'WSGATE_API_ID', 'WSGATE_LIVE_ENDPOINT', 'WSGATE_DEAD_ENDPOINT']);

const field = (label) => page.getByLabel(label, { exact: true });

await run(async () => {
  const states = {};
  const texts = {};
  const failures = {};
  let reported = false;
  await step('endpoints-state', async () => {
    await signIn(control, '/publisher', 'admin', password);
    await goto(`${control}/publisher/apis/${apiId}`);
    await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Endpoints', exact: true }).click()]);
    await expectText('h1', 'endpoints');
    await expectText('#state-heading', 'Endpoint state');
    for (const url of [live, dead]) {
      const row = page.locator(`tr[data-endpoint="${url}"]`);
      check(await row.count() === 1, `the state table has a row for ${url}`);
      states[url] = await row.getAttribute('data-state');
      texts[url] = (await row.locator('.badge').textContent()).trim();
      failures[url] = (await row.locator('td').nth(3).textContent()).trim();
    }
    reported = await page.locator('[data-unreported]').count() === 0;
    // The stored defaults are shown: the breaker is on, nothing overrides the gateway.
    check(await page.getByLabel('Suspend an endpoint that keeps failing').isChecked(), 'the breaker is on by default');
    check(await field('Connect timeout').inputValue() === '', 'no connect timeout override yet');
  });

  await step('endpoints-bad-duration', async () => {
    await field('Connect timeout').fill('2 s');
    await field('Maximum lifetime').fill('1h');
    await submit(page.getByRole('button', { name: 'Save endpoint settings' }), 422);
    await expectText('#f-connect_timeout-error', '"2 s" is not a duration like 250ms');
    const said = await page.locator('#f-connect_timeout-error').textContent();
    check(!said.includes('endpoint_settings'), `the message speaks of the field, not the REST path: ${said}`);
    check(await field('Connect timeout').getAttribute('aria-invalid') === 'true', 'the field is marked invalid');
    check(await field('Maximum lifetime').inputValue() === '1h', 'what was typed is kept');
    await expectText('.notice.error, [role="alert"]', 'attention');
  });

  await step('endpoints-saved', async () => {
    await field('Connect timeout').fill('2s');
    await field('Load balancing').selectOption('least_connections');
    await page.getByLabel(`Weight of ${live}`).fill('3');
    await page.getByLabel(`Weight of ${dead}`).fill('1');
    await field('Failures in a row').fill('3');
    await field('Suspended for (cool-down)').fill('15s');
    await field('Probe').selectOption('websocket');
    await field('Probe path').fill('/health');
    await field('Probe every').fill('5s');
    await field('Web pages that may connect').fill('https://app.example.com\nhttp://localhost:3000');
    await submit(page.getByRole('button', { name: 'Save endpoint settings' }));
    await expectText('.notice', 'endpoint settings were saved');
    check(await field('Connect timeout').inputValue() === '2s', 'the saved connect timeout is shown');
    check(await field('Load balancing').inputValue() === 'least_connections', 'the saved balancing is shown');
    check(await page.getByLabel(`Weight of ${live}`).inputValue() === '3', 'the saved weight is shown');
  });
  return { states, texts, failures, reported };
});
