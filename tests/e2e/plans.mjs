// Business plans in a real browser: the admin reads the plans and their limits in the
// publisher, sees an API's usage, then moves a subscription from Gold to Silver in the developer
// portal while a client keeps a connection busy (run by crates/wsgate/tests/it/portal/plans.rs,
// which watches that connection and checks the new plan bites within a second).
//
// Environment: WSGATE_CONTROL_URL, WSGATE_ADMIN_PASSWORD, WSGATE_API_ID, WSGATE_SUBSCRIPTION_ID
// (as in lib.mjs for the browser). Answer: {"ok": true, "changed_at": <ms since the epoch>}.

import { check, expectText, goto, page, required, run, signIn, step, submit } from './lib.mjs';

const { WSGATE_CONTROL_URL: control, WSGATE_ADMIN_PASSWORD: password, WSGATE_API_ID: apiId,
  WSGATE_SUBSCRIPTION_ID: subscription } =
  required(['WSGATE_CONTROL_URL', 'WSGATE_ADMIN_PASSWORD', 'WSGATE_API_ID', 'WSGATE_SUBSCRIPTION_ID']);

await run(async () => {
  await step('plans-publisher-list', async () => {
    await signIn(control, '/publisher', 'admin', password);
    await goto(`${control}/publisher/plans`);
    await expectText('h1', 'Business plans');
    await expectText('[data-limits="Gold"]', '20000/min messages');
    await expectText('[data-limits="Silver"]', '5/s messages (from the client, close)');
  });

  await step('plans-publisher-api-usage', async () => {
    await goto(`${control}/publisher/apis/${apiId}`);
    await expectText('section.usage h2', 'Usage');
    await expectText('section.usage', 'Gold');
    await expectText('section.usage', 'messages:');
  });

  let changedAt = 0;
  await step('plans-devportal-change-plan', async () => {
    await signIn(control, '/devportal', 'admin', password);
    await goto(`${control}/devportal/applications`);
    const row = page.locator(`tr[data-subscription="${subscription}"]`);
    await expectText(`tr[data-subscription="${subscription}"] .usage`, 'messages:');
    await row.getByLabel('Plan').selectOption('Silver');
    changedAt = Date.now();
    await submit(row.getByRole('button', { name: 'Change plan' }));
    await expectText('.notice', 'plan was changed');
    const plan = await page.locator(`tr[data-subscription="${subscription}"] select`).inputValue();
    check(plan === 'Silver', `the subscription shows Silver now, shows ${plan}`);
  });
  return { changed_at: changedAt };
});
