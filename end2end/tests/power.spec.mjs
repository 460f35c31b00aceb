// A machine's power in the browser, against the Redfish emulator .ci/test starts (sushy-tools,
// one system, off): the BMC is set and checked from the machine's page with the keyboard, its
// warning shows, the machine is powered on, the boot timeline follows it to "on", and its
// hardware, read from the BMC, is shown.
import { expect } from '@playwright/test';
import { createMachine, expectAccessible, open, signIn, test, uniqueMac } from './support.mjs';

const BMC = process.env.PANGEA_TEST_BMC_URL;

test.beforeEach(async ({ page }) => {
  test.skip(!BMC, 'no Redfish emulator here: power is not tested in the browser');
  await signIn(page);
});

test('a BMC is checked and set on the machine page, and the machine is powered on and followed', async ({ page, api }) => {
  const machine = await createMachine(api, { mac: uniqueMac(), hostname: 'powered' });
  await open(page, `/machines/${machine.id}`);
  const power = page.getByRole('region', { name: 'Power' });
  await expect(power).toContainText('This machine has no BMC yet');

  // A wrong password is refused in words, next to its field; nothing is kept.
  await power.getByLabel('BMC address (Redfish)').fill(BMC);
  await power.getByLabel('BMC user').fill(process.env.PANGEA_TEST_BMC_USER);
  await power.getByLabel('BMC password').fill('not-the-password');
  await power.getByLabel('BMC password').press('Enter');
  await expect(power.getByText(/refused the user name or password/)).toBeVisible({ timeout: 30_000 });
  expect((await api.get(`/api/v1/machines/${machine.id}/bmc`)).status()).toBe(404);

  await power.getByLabel('BMC password').fill(process.env.PANGEA_TEST_BMC_PASSWORD);
  await power.getByRole('button', { name: 'Check and save BMC' }).click();
  await expect(page.getByText('BMC checked and saved.')).toBeVisible();
  await expect(power.locator('.power-state')).toContainText('Power: off');
  await expect(power.getByRole('note')).toContainText('plain HTTP');
  await expectAccessible(page);
  await page.emulateMedia({ colorScheme: 'dark' });
  await expectAccessible(page);
  await page.emulateMedia({ colorScheme: 'light' });

  // Power on, with the keyboard: asked at once, then followed live on the boot timeline.
  await power.getByRole('button', { name: 'Power on', exact: true }).focus();
  await page.keyboard.press('Enter');
  await expect(page.getByText(/Asked: the machine is powering on/)).toBeVisible();
  const timeline = page.getByRole('region', { name: 'Boot timeline' });
  await expect(timeline).toContainText('power on requested by admin');
  await expect(timeline).toContainText('power on: on', { timeout: 30_000 });
  // Its hardware, read from the BMC once it was set, is drawn in the same section.
  await expect(power.getByRole('heading', { name: 'Hardware' })).toBeVisible({ timeout: 30_000 });
  await expect(power.locator('dl.hardware')).toContainText('Sushy Emulator');
  await expect(power.locator('dl.hardware')).toContainText('1 NIC: 52:54:00:e2:e0:01');
  await expectAccessible(page);
  const audit = await (await api.get('/api/v1/audit?action=machine.power')).json();
  expect(audit.items.some((e) => e.target_name === machine.mac && e.actor === 'admin')).toBe(true);

  // The machines list shows its power too.
  await open(page, `/machines?q=${machine.mac}`);
  await expect(page.locator('table.machines .badge.power-on')).toHaveText('on');

  // Forgotten again, so the next run finds the emulator's system as it left it: off.
  await api.post(`/api/v1/machines/${machine.id}/power`, { data: { action: 'force_off' } });
  await api.delete(`/api/v1/machines/${machine.id}`);
});

test('a power run is planned and started from its page, and followed to its end', async ({ page, api }) => {
  const machine = await createMachine(api, { mac: uniqueMac(), hostname: 'run', labels: { rack: 'e2e-run' } });
  const set = await api.put(`/api/v1/machines/${machine.id}/bmc`, {
    data: { url: BMC, username: process.env.PANGEA_TEST_BMC_USER, password: process.env.PANGEA_TEST_BMC_PASSWORD },
  });
  expect(set.status(), await set.text()).toBe(200);

  await open(page, '/machines/power-runs');
  const form = page.getByRole('form', { name: 'Power run' });
  await form.getByLabel("Machines (a search, as the machine list's)").fill('rack=e2e-run');
  await form.getByLabel('Action').selectOption('force_off');
  await form.getByLabel('Group by label').fill('rack');
  await form.getByLabel('At most booting at once (0: no limit)').fill('0');
  // Enter plans; only "Start" starts.
  await form.getByLabel('per seconds').press('Enter');
  await expect(page.getByRole('region', { name: 'Plan' })).toContainText('Force off for 1 machines');
  await expectAccessible(page);

  await form.getByRole('button', { name: 'Start' }).click();
  const run = page.getByRole('region', { name: 'Run' });
  await expect(run).toContainText('Succeeded: 1 of 1 machines finished', { timeout: 45_000 });
  await expect(run.getByRole('cell', { name: machine.mac })).toBeVisible();
  await expectAccessible(page);
  const audit = await (await api.get('/api/v1/audit?action=machine.power.run.end')).json();
  expect(audit.items.length).toBeGreaterThan(0);
  await api.delete(`/api/v1/machines/${machine.id}`);
});

test('BMCs are discovered from their address and their system imported as a machine', async ({ page, api }) => {
  const origin = new URL(BMC).origin;
  await open(page, '/machines/discover');
  const form = page.getByRole('form', { name: 'Discover by BMC' });
  await form.getByLabel('BMC addresses').fill(origin);
  await form.getByLabel('BMC user').fill(process.env.PANGEA_TEST_BMC_USER);
  await form.getByLabel('BMC password').fill(process.env.PANGEA_TEST_BMC_PASSWORD);
  await expectAccessible(page);
  await form.getByLabel('BMC password').press('Enter');
  const found = page.getByRole('region', { name: 'Discovery' });
  await expect(found).toContainText('Succeeded: 1 of 1 BMCs asked, 1 systems found.', { timeout: 30_000 });
  await expect(found.getByRole('cell', { name: '52:54:00:e2:e0:01' }).first()).toBeVisible();
  await expectAccessible(page);
  await page.emulateMedia({ colorScheme: 'dark' });
  await expectAccessible(page);
  await page.emulateMedia({ colorScheme: 'light' });

  // The import's own preview, then the import, with the keyboard.
  await found.getByRole('button', { name: 'Preview the import of 1 machines' }).click();
  await expect(found).toContainText('1 machine to create');
  await found.getByRole('button', { name: 'Import 1 machines' }).focus();
  await page.keyboard.press('Enter');
  await expect(found).toContainText('Imported 1 machines.');
  const listed = await (await api.get('/api/v1/machines?search=52:54:00:e2:e0:01')).json();
  expect(listed.items.length).toBe(1);
  const bmc = await (await api.get(`/api/v1/machines/${listed.items[0].id}/bmc`)).json();
  expect(bmc.url).toBe(BMC);
  await api.delete(`/api/v1/machines/${listed.items[0].id}`);
});
