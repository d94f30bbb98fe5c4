// The publisher's Nodes page in a real browser: the admin finds "Nodes" in the navigation and
// reads every node's state, connections, version and last heartbeat; a publisher sees no such
// link and gets the 403 page at its address; a visitor is sent to sign in (run by
// crates/wsgate/tests/it/portal/nodes.rs, which put a gone and a stopped node beside the live one).
//
// Environment: WSGATE_CONTROL_URL, WSGATE_ADMIN_PASSWORD, WSGATE_PUBLISHER, WSGATE_PUBLISHER_PASSWORD
// (as in lib.mjs for the browser).
// Answer: {"ok": true, "nodes": {name: {state, badge, connections, version, seen, started}},
// "summary": the line above the table}.

import { check, expectText, goto, page, required, run, signIn, step } from './lib.mjs';

const { WSGATE_CONTROL_URL: control, WSGATE_ADMIN_PASSWORD: password, WSGATE_PUBLISHER: publisher,
  WSGATE_PUBLISHER_PASSWORD: publisherPassword } =
  required(['WSGATE_CONTROL_URL', 'WSGATE_ADMIN_PASSWORD', 'WSGATE_PUBLISHER', 'WSGATE_PUBLISHER_PASSWORD']);

const navLink = () => page.locator('nav').getByRole('link', { name: 'Nodes', exact: true });

await run(async () => {
  const nodes = {};
  let summary = '';
  await step('nodes-admin', async () => {
    await signIn(control, '/publisher', 'admin', password);
    check(await navLink().count() === 1, 'an admin sees the Nodes link');
    await Promise.all([page.waitForNavigation(), navLink().click()]);
    await expectText('h1', 'Nodes');
    summary = (await page.locator('.node-summary').textContent()).trim();
    for (const row of await page.locator('tr[data-node]').all()) {
      const name = (await row.locator('.node-name').textContent()).trim();
      const cell = async (css) => (await row.locator(css).textContent()).trim();
      nodes[name] = {
        state: await row.getAttribute('data-state'),
        badge: await cell('.badge'),
        connections: await cell('.connections'),
        version: await cell('.version'),
        seen: await cell('.seen'),
        started: await cell('.started'),
        addresses: await cell('.addresses'),
      };
    }
  });

  await step('nodes-publisher-refused', async () => {
    await page.context().clearCookies();
    await signIn(control, '/publisher', publisher, publisherPassword);
    check(await navLink().count() === 0, 'a publisher sees no Nodes link');
    await goto(`${control}/publisher/nodes`, 403);
    await expectText('h1', '403');
    await expectText('main', 'This page needs the admin role.');
  });

  await step('nodes-visitor-signs-in', async () => {
    await page.context().clearCookies();
    await goto(`${control}/publisher/nodes`);
    check(page.url().includes('/publisher/login?next=/publisher/nodes'), `sent to sign in: ${page.url()}`);
  });
  return { nodes, summary };
});
