// Provisioning in the browser: the reference Matchbox data imported through the API, then what
// a machine will get, the template editor's checks, a profile made with the keyboard, and axe.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from '@playwright/test';
import { createMachine, expectAccessible, open, signIn, test, uniqueMac } from './support.mjs';

const DATA = join(import.meta.dirname, '../../server/tests/fixtures/matchbox/data');

/** The reference data directory's files, by relative path. */
function referenceFiles() {
  const files = {};
  for (const dir of ['profiles', 'groups', 'ignition', 'generic']) {
    for (const name of readdirSync(join(DATA, dir))) files[`${dir}/${name}`] = readFileSync(join(DATA, dir, name), 'utf8');
  }
  return files;
}

test.beforeAll(async ({ playwright, baseURL }) => {
  const api = await playwright.request.newContext({
    baseURL,
    extraHTTPHeaders: { Authorization: `Bearer ${process.env.PANGEA_E2E_TOKEN}` },
  });
  const res = await api.post('/api/v1/provisioning/import', { data: { files: referenceFiles() } });
  expect(res.status(), await res.text()).toBe(200);
  expect((await res.json()).committed).toBe(true);
  await api.dispose();
});

test.beforeEach(async ({ page }) => {
  await signIn(page);
});

test('a MAC typed into "What will this machine get?" shows its group, the losers and the iPXE script', async ({ page }) => {
  await open(page, '/provisioning');
  await page.getByLabel(/What will this machine get\?/).fill('52-54-00-00-00-01');
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/provisioning\/explain\?query=/);
  await expect(page.getByRole('heading', { name: 'What will this machine get?' })).toBeVisible();
  await expect(page.locator('dd').filter({ hasText: 'node-0001' }).first()).toBeVisible();
  await expect(page.getByRole('row', { name: /node-0001 1 serves this machine/ })).toBeVisible();
  await expect(page.getByRole('row', { name: /node-0001-installed .*no os label/ })).toBeVisible();
  await expect(page.locator('pre').first()).toContainText('kernel /assets/vmlinuz');
  await expect(page.locator('pre').nth(1)).toContainText('"version":"3.4.0"');
});

test('a machine in the inventory links to what it will get', async ({ page, api }) => {
  const machine = await createMachine(api, { mac: uniqueMac(), hostname: 'explained' });
  await open(page, `/machines/${machine.id}`);
  await page.getByRole('link', { name: 'What will this machine get?' }).click();
  await expect(page).toHaveURL(/\/provisioning\/explain\?query=mac/);
  await expect(page.locator('dd').filter({ hasText: 'default' }).first()).toBeVisible();
});

test('a machine gets a boot profile of its own on its page, and then boots it', async ({ page, api }) => {
  const mac = uniqueMac();
  const machine = await createMachine(api, { mac, hostname: 'own-profile' });
  await open(page, `/machines/${machine.id}`);
  await expect(page.locator('p.boot-profile')).toContainText('none: it boots only if a group selects it');
  await page.getByLabel('Its own boot profile').selectOption('controller');
  await page.getByRole('button', { name: 'Set boot profile' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'now boots profile controller' })).toBeVisible();
  await expect(page.locator('p.boot-profile')).toContainText('controller (its own)');
  const why = await (await api.get(`/api/v1/provisioning/explain?query=${encodeURIComponent(`mac=${mac}`)}`)).json();
  expect(why.group).toBe(`~inventory:${mac}`);
  expect(why.ipxe.body).toContain('matchbox.profile=controller');
});

test('the template editor names the line and column of a mistake and renders for a sample machine', async ({ page }) => {
  await open(page, '/provisioning/templates/generic/node.env.tmpl');
  const content = page.getByLabel(/^Content/);
  await page.getByLabel('Check it for the machine with these labels').fill('mac=52:54:00:00:00:01');
  await expect(page.locator('#template-check')).toContainText('Renders for group node-0001');
  await content.fill('HOST={{.hostname}}\nBROKEN={{.role');
  await expect(page.locator('#template-check')).toContainText('line 2, column 10: unclosed action');
  await content.fill('HOST={{.hostname}}\nMISSING={{.nosuch}}\n');
  await expect(page.locator('#template-check')).toContainText('line 2, column 11: map has no entry for key "nosuch"');
});

test('a profile is made with the keyboard alone, and a bad id is caught before saving', async ({ page }) => {
  await open(page, '/provisioning/new/profile');
  const id = page.getByLabel(/^Id/);
  await id.focus();
  await page.keyboard.type('bad/id');
  await expect(page.getByText(/"bad\/id" is not a valid profile id/)).toBeVisible();
  await id.fill('');
  await page.keyboard.type('kbd-profile');
  await page.keyboard.press('Tab'); // name
  await page.keyboard.type('Made with keys');
  await page.keyboard.press('Tab'); // kernel
  await page.keyboard.type('/assets/vmlinuz');
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/provisioning$/);
  await expect(page.getByRole('link', { name: 'kbd-profile' })).toBeVisible();
});

test('the overview filters groups on the server and sets an inventory default', async ({ page }) => {
  await open(page, '/provisioning');
  await page.getByLabel('Filter groups by id, profile or selector').fill('NODE-0001');
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/provisioning\?groups=NODE-0001$/);
  await expect(page.getByRole('link', { name: 'node-0001-installed' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'node-0002', exact: true })).toHaveCount(0);

  const cluster = `e2e-${Date.now().toString(36)}`;
  await page.getByLabel('Cluster (empty: machines in no cluster)').fill(cluster);
  await page.getByLabel('Role', { exact: true }).selectOption('controller');
  await page.getByLabel('Profile', { exact: true }).selectOption('controller');
  await page.getByRole('button', { name: 'Set default' }).click();
  await expect(page.getByRole('status').filter({ hasText: `controllers in ${cluster} now boot controller.` })).toBeVisible();
  await expect(page.getByRole('row', { name: `${cluster} controller controller` })).toBeVisible();
  await page.getByLabel('Cluster (empty: machines in no cluster)').fill(cluster);
  await page.getByLabel('Role', { exact: true }).selectOption('controller');
  await page.getByRole('button', { name: 'Set default' }).click();
  await expect(page.getByRole('row', { name: `${cluster} controller controller` })).toHaveCount(0);
});

test('provisioning pages have no axe-core violations, light and dark', async ({ page }) => {
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const url of [
      '/provisioning',
      '/provisioning/explain?query=mac%3D52%3A54%3A00%3A00%3A00%3A01',
      '/provisioning/profiles/controller',
      '/provisioning/groups/node-0001',
      '/provisioning/templates/ignition/controller.yaml.tmpl',
      '/provisioning/new/group',
      '/provisioning/import',
    ]) {
      await open(page, url);
      await expectAccessible(page);
    }
  }
});
