// Creating a cluster in the browser: an admin writes a template for three machines, checks it,
// creates it and follows each machine, then destroys it by typing its name. (The machines here
// have no BMCs and never boot: the whole path with VMs is in the creation benchmark's notes.)
import { expect } from '@playwright/test';
import { createMachine, expectAccessible, open, signIn, test, uniqueMac } from './support.mjs';

test.beforeEach(async ({ page }) => {
  await signIn(page);
});

test('an admin checks a template, creates the cluster, follows its machines and destroys it', async ({ page, api }) => {
  const name = `e2e-${Date.now().toString(36)}`;
  const macs = [uniqueMac(), uniqueMac(), uniqueMac()];
  const machines = [];
  for (const [i, mac] of macs.entries()) {
    machines.push(await createMachine(api, { mac, hostname: `${name}-${i}`, labels: { pool: name } }));
  }
  const template = [
    'version: pangea.dev/v1',
    `name: ${name}`,
    'kubernetes: v1.36.2',
    'os: flatcar',
    'controllers:',
    `  machines: ["${macs[0]}"]`,
    'workers:',
    `  search: pool=${name}`,
    'api_server:',
    `  name: ${name}.example.com`,
    '  address: 10.0.0.10',
  ].join('\n');

  await open(page, '/clusters');
  await page.getByRole('link', { name: 'Create cluster' }).click();
  await expect(page.getByRole('heading', { name: 'Create a cluster' })).toBeVisible();
  const form = page.getByRole('form', { name: 'Cluster template' });
  await form.getByLabel('Cluster template (YAML)').fill(template);
  await form.getByRole('button', { name: 'Check' }).click();
  const checked = page.getByRole('region', { name: 'What it would do' });
  await expect(checked.getByRole('cell', { name: macs[0] })).toBeVisible();
  await expect(checked.getByRole('cell', { name: 'you (it has no BMC)' })).toHaveCount(3);
  await expectAccessible(page);

  // A mistake is named with its line, and nothing is created.
  await form.getByLabel('Cluster template (YAML)').fill(template.replace('os: flatcar', 'os: windows'));
  await form.getByRole('button', { name: 'Create' }).click();
  await expect(page.getByRole('alert')).toContainText('line 4');

  await form.getByLabel('Cluster template (YAML)').fill(template);
  await form.getByRole('button', { name: 'Create' }).click();
  await expect(page).toHaveURL(new RegExp(`/clusters/create\\?name=${name}$`));
  const creation = page.getByRole('region', { name: 'Creation' });
  await expect(creation).toContainText(`${name}: waiting for the control plane at 10.0.0.10:6443`, { timeout: 15_000 });
  await expect(creation.getByRole('cell', { name: `${name}-1 has no BMC: power it on and boot it from the network` })).toBeVisible();
  await expect(page.getByRole('link', { name, exact: true })).toBeVisible();
  await expectAccessible(page);
  await page.emulateMedia({ colorScheme: 'dark' });
  await expectAccessible(page);
  await page.emulateMedia({ colorScheme: 'light' });

  // Destroy, with the keyboard, by its name.
  await creation.getByLabel(`Type ${name} to destroy it`, { exact: false }).fill(name);
  await creation.getByLabel(`Type ${name} to destroy it`, { exact: false }).press('Enter');
  await expect(page.getByText(`Destroyed ${name}`)).toBeVisible();
  expect((await api.get(`/api/v1/cluster-creations/${name}`)).status()).toBe(404);
  const audit = await (await api.get('/api/v1/audit?action=cluster.destroy')).json();
  expect(audit.items.some((r) => r.target_id === name)).toBe(true);
  for (const m of machines) await api.delete(`/api/v1/machines/${m.id}`);
});
