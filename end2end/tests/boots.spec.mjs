// Boots in the browser: a machine's timeline follows its boot requests live, the machines list
// filters by state and charts the last hour, and a discovered machine is added with the keyboard.
import { expect } from '@playwright/test';
import { createMachine, expectAccessible, open, reportToken, signIn, test, uniqueMac } from './support.mjs';

const BOOT = process.env.PANGEA_BOOT_URL;

test.beforeEach(async ({ page }) => {
  await signIn(page);
});

test("a machine's timeline shows each boot request as it happens, with the reason of a failure", async ({ page, api }) => {
  const mac = uniqueMac();
  const machine = await createMachine(api, { mac, hostname: 'timeline' });
  await open(page, `/machines/${machine.id}`);
  const timeline = page.getByRole('region', { name: 'Boot timeline' });
  await expect(timeline.getByRole('status')).toContainText('never seen');
  const token = await reportToken(api, mac);
  // The machine reports a failure, with the token its config holds: the open page shows it
  // without a reload.
  const res = await fetch(`${BOOT}/metadata?mac=${mac}&stage=failed&reason=disk-on-fire&report_token=${token}`);
  expect([200, 404]).toContain(res.status);
  await expect(timeline.getByRole('status')).toContainText('failed');
  await expect(timeline.getByRole('alert')).toBeVisible();
  await expect(timeline.getByRole('row', { name: /\/metadata/ })).toBeVisible();
  await expectAccessible(page);
  await page.emulateMedia({ colorScheme: 'dark' });
  await expectAccessible(page);
});

test('the machines list shows each state, filters by it and charts the last hour', async ({ page, api }) => {
  const mac = uniqueMac();
  await createMachine(api, { mac, hostname: 'filtered' });
  await fetch(`${BOOT}/metadata?mac=${mac}&stage=failed&report_token=${await reportToken(api, mac)}`);
  await open(page, '/machines');
  await expect(page.locator('figure.boot-chart figcaption')).toContainText('last hour');
  await page.getByLabel('Boot state').selectOption('failed');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page).toHaveURL(/state=failed/);
  await expect(page.getByRole('row', { name: new RegExp(mac) })).toContainText('failed');
  await expectAccessible(page);
});

test('an unknown machine that asks to boot is discovered and added with the keyboard', async ({ page, api }) => {
  const mac = uniqueMac();
  await fetch(`${BOOT}/ipxe?mac=${mac}&serial=SN-E2E&arch=x86_64`);
  await expect
    .poll(async () => (await (await api.get('/api/v1/boot/discovered')).json()).some((d) => d.mac === mac))
    .toBe(true);
  await open(page, '/machines/discovered');
  const row = page.getByRole('row', { name: new RegExp(mac) });
  await expect(row).toContainText('SN-E2E');
  await expectAccessible(page);
  await row.getByRole('checkbox').focus();
  await page.keyboard.press('Space');
  await page.getByLabel('Cluster').fill('edge-1');
  await page.getByRole('button', { name: 'Add 1 to the inventory' }).press('Enter');
  await expect(page.getByText('Added 1 machine to the inventory.')).toBeVisible();
  const found = await (await api.get(`/api/v1/machines?search=${mac}`)).json();
  expect(found.items[0].serial).toBe('SN-E2E');
  expect(found.items[0].cluster).toBe('edge-1');
});
