// Session analytics in a real browser: the publisher opens an API's Analytics tab for the last
// hour, day and week, and the developer opens an application's usage charts; every chart must
// carry data (run by crates/wsgate/tests/it/portal/analytics.rs after real traffic, which
// compares the numbers read here with what it sent).
//
// Environment: WSGATE_CONTROL_URL, WSGATE_ADMIN_PASSWORD, WSGATE_API_ID, WSGATE_APPLICATION_ID,
// WSGATE_APPLICATION_NAME. Answer: {"ok": true, "hour": {...}, "application": {...}} with the
// numbers each page shows.

import { check, expectText, goto, page, required, run, signIn, step } from './lib.mjs';

const { WSGATE_CONTROL_URL: control, WSGATE_ADMIN_PASSWORD: password, WSGATE_API_ID: apiId,
  WSGATE_APPLICATION_ID: appId, WSGATE_APPLICATION_NAME: appName } =
  required(['WSGATE_CONTROL_URL', 'WSGATE_ADMIN_PASSWORD', 'WSGATE_API_ID', 'WSGATE_APPLICATION_ID',
    'WSGATE_APPLICATION_NAME']);

// What the page's charts say: each chart's total and largest value, its bars, the rankings.
async function readCharts() {
  return page.evaluate(() => {
    const charts = {};
    for (const figure of document.querySelectorAll('[data-chart]')) {
      charts[figure.dataset.chart] = {
        total: Number(figure.dataset.total),
        max: Number(figure.dataset.max || 0),
        slots: Number(figure.dataset.slots || 0),
        bars: figure.querySelectorAll('rect.bar').length,
        drawn: [...figure.querySelectorAll('rect.bar')].filter((bar) => Number(bar.getAttribute('height')) > 0).length,
        names: [...figure.querySelectorAll('li[data-name]')].map((li) => [li.dataset.name, Number(li.dataset.value)]),
      };
    }
    const totals = document.querySelector('.totals').dataset;
    return { charts, opened: Number(totals.opened), refused: Number(totals.refused),
      messages_in: Number(totals.messagesIn), messages_out: Number(totals.messagesOut) };
  });
}

function nonEmpty(seen, name) {
  const chart = seen.charts[name];
  check(chart, `the page has a chart ${name}`);
  check(chart.total > 0, `${name} shows data, its total is ${chart.total}`);
  if (chart.slots) check(chart.drawn > 0, `${name} draws at least one bar (of ${chart.bars})`);
}

await run(async () => {
  const seen = {};
  await step('analytics-publisher-tab', async () => {
    await signIn(control, '/publisher', 'admin', password);
    await goto(`${control}/publisher/apis/${apiId}`);
    await page.getByRole('link', { name: 'Analytics' }).click();
    await page.waitForURL(`**/publisher/apis/${apiId}/analytics`);
    await expectText('h1', 'analytics');
  });

  for (const [range, slots] of [['hour', 60], ['day', 96], ['week', 84]]) {
    await step(`analytics-publisher-${range}`, async () => {
      await goto(`${control}/publisher/apis/${apiId}/analytics?range=${range}`);
      const charts = await readCharts();
      for (const name of ['open-connections', 'messages-per-second', 'bytes', 'refusals', 'top-applications',
        'refusals-by-status', 'closes-by-code']) {
        nonEmpty(charts, name);
      }
      check(charts.charts['open-connections'].slots === slots, `${range}: ${slots} slots, shows ${charts.charts['open-connections'].slots}`);
      const top = charts.charts['top-applications'].names.map(([name]) => name);
      check(top.includes(appName), `${appName} is among the top applications: ${top}`);
      seen[range] = charts;
    });
  }

  await step('analytics-devportal-application', async () => {
    await signIn(control, '/devportal', 'admin', password);
    await goto(`${control}/devportal/applications`);
    await page.locator(`a[href="/devportal/applications/${appId}/analytics"]`).click();
    await page.waitForURL(`**/devportal/applications/${appId}/analytics`);
    await expectText('h1', `${appName}: usage`);
    const charts = await readCharts();
    for (const name of ['open-connections', 'messages-per-second', 'bytes', 'apis']) nonEmpty(charts, name);
    seen.application = charts;
  });
  return { hour: seen.hour, day: seen.day, week: seen.week, application: seen.application };
});
