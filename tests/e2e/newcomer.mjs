// A newcomer's first hour in the portals, in a real browser: browsing the developer portal
// without an account (and a server where that is turned off), the publisher's required fields,
// moving a subscription to another plan from the API's Subscriptions tab, and the "Try it"
// console telling the gateway's real reason when the upstream is down.
//
// Run by crates/wsgate/tests/it/portal/newcomer.rs. Environment: WSGATE_CONTROL_URL,
// WSGATE_ADMIN_PASSWORD, WSGATE_API_ID and WSGATE_API_NAME (a published API whose upstream is
// down), WSGATE_SUBSCRIPTION_ID (the admin's application subscribed to it with Gold),
// WSGATE_CLOSED_CONTROL_URL (a server with control.anonymous_browsing = false).
// Answer: {"ok": true, "console": [...the console's lines]}.

import { check, expectText, goto, page, required, run, signIn, step, submit } from './lib.mjs';

const {
  WSGATE_CONTROL_URL: control, WSGATE_ADMIN_PASSWORD: password, WSGATE_API_ID: apiId,
  WSGATE_API_NAME: apiName, WSGATE_SUBSCRIPTION_ID: subscription, WSGATE_CLOSED_CONTROL_URL: closed,
} = required(['WSGATE_CONTROL_URL', 'WSGATE_ADMIN_PASSWORD', 'WSGATE_API_ID', 'WSGATE_API_NAME',
  'WSGATE_SUBSCRIPTION_ID', 'WSGATE_CLOSED_CONTROL_URL']);

await run(async () => {
  await step('newcomer-anonymous-catalogue', async () => {
    await goto(`${control}/devportal`);
    check(new URL(page.url()).pathname === '/devportal', `a visitor stays on the catalogue (${page.url()})`);
    await expectText('h1', 'APIs');
    await expectText('ul.cards', apiName);
    check(await page.getByRole('link', { name: 'Sign in' }).isVisible(), 'the header offers to sign in');
    check(await page.getByRole('link', { name: 'Create an account' }).isVisible(), 'and to create an account');
    check((await page.getByRole('link', { name: 'Applications' }).count()) === 0, 'no Applications link without an account');
  });

  await step('newcomer-anonymous-api-page', async () => {
    await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: apiName }).click()]);
    await expectText('h1', apiName);
    await expectText('#url-0', 'ws://');
    await expectText('#try', 'Sign in to try the API');
  });

  await step('newcomer-wizard-asks-to-sign-in', async () => {
    // Subscribing needs an account: the wizard asks to sign in and comes back.
    await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Key generation wizard' }).click()]);
    check(new URL(page.url()).pathname === '/devportal/login', `the wizard asks to sign in (${page.url()})`);
    await expectText('.notice', 'Please sign in');
  });

  await step('newcomer-anonymous-browsing-off', async () => {
    await goto(`${closed}/devportal`);
    check(new URL(page.url()).pathname === '/devportal/login', `with anonymous_browsing = false, sign in first (${page.url()})`);
  });

  await step('newcomer-required-fields', async () => {
    await signIn(control, '/publisher', 'admin', password);
    await goto(`${control}/publisher/apis/new`);
    await page.getByLabel('Name').fill('Forgetful');
    await submit(page.getByRole('button', { name: 'Create', exact: true }), 422);
    await expectText('#f-context-error', 'Context is required');
    await expectText('#f-version-error', 'Version is required');
  });

  await step('newcomer-publisher-change-plan', async () => {
    await goto(`${control}/publisher/apis/${apiId}/subscriptions`);
    const row = page.locator(`tr[data-subscription="${subscription}"]`);
    check((await row.locator('select').inputValue()) === 'Gold', 'the subscription starts on Gold');
    await row.getByLabel('Plan', { exact: true }).selectOption('Silver');
    await submit(row.getByRole('button', { name: 'Change plan' }));
    check(new URL(page.url()).pathname === `/publisher/apis/${apiId}/subscriptions`, `back on the tab (${page.url()})`);
    const plan = await page.locator(`tr[data-subscription="${subscription}"] select`).inputValue();
    check(plan === 'Silver', `the tab shows Silver now, shows ${plan}`);
  });

  let lines = [];
  await step('newcomer-try-it-upstream-down', async () => {
    await goto(`${control}/devportal/apis/${apiId}`);
    await page.getByLabel('Application').selectOption({ index: 0 });
    await submit(page.getByRole('button', { name: 'Get a test token' }));
    await page.getByRole('button', { name: 'Connect', exact: true }).click();
    const problem = page.locator('.console-log li.problem');
    await problem.first().waitFor();
    lines = await page.locator('.console-log li').allTextContents();
    const said = await problem.first().textContent();
    check(said.includes('the gateway answered 502'), `the console gives the gateway's status: ${said}`);
    check(said.includes('upstream refused the connection'), `and its reason: ${said}`);
    check(!lines.some((line) => line.includes('token') && line.includes('certificate')), `no guessing: ${lines}`);
  });
  return { console: lines };
});
