// On a 390 px phone, every page fits the screen's width: wide tables scroll inside their own
// box, and the page itself never scrolls sideways.
import { expect } from '@playwright/test';
import { test, signIn, open, createMachine, uniqueMac } from './support.mjs';

test.use({ viewport: { width: 390, height: 844 } });

test('pages never scroll sideways on a 390 px phone', async ({ page, api }) => {
  await createMachine(api, {
    mac: uniqueMac(),
    hostname: 'a-rather-long-host-name-for-a-narrow-screen.rack-17.datacenter.example.com',
    labels: { 'topology.kubernetes.io/zone': 'zone-with-a-long-name', rack: 'r17' },
    cluster: 'production-cluster-with-a-long-name',
    serial: 'SERIAL-0123456789-ABCDEFGHIJ',
  });
  await signIn(page);
  for (const url of ['/machines', '/machines/new', '/machines/import', '/clusters', '/clusters/new', '/access', '/audit']) {
    await open(page, url);
    const [scrollWidth, innerWidth] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    expect(scrollWidth, `${url} is ${scrollWidth} px wide`).toBeLessThanOrEqual(innerWidth);
  }
  await open(page, '/machines');
  const wrap = page.locator('.table-wrap').first();
  const [inner, outer] = await wrap.evaluate((el) => [el.scrollWidth, el.clientWidth]);
  expect(inner, 'the table itself is wider than the phone and scrolls in its box').toBeGreaterThan(outer);
});
