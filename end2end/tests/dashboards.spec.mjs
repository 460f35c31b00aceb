// Dashboards drawn by Pangea in the browser, against the real Prometheus .ci/test starts: a
// shipped dashboard renders its variables and panels, axe-clean in light and dark; a Grafana
// JSON dashboard is imported by upload, and a panel type Pangea does not draw says so.
import { expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { expectAccessible, open, signIn, test } from './support.mjs';

const KUBE = process.env.KUBE_URL;
const PROMETHEUS = process.env.PANGEA_TEST_PROMETHEUS_URL;

test.beforeEach(async ({ page }) => {
  test.skip(!KUBE || !PROMETHEUS, 'no kube-apiserver or Prometheus here: dashboards are not tested');
  await signIn(page);
});

async function cluster(api, prefix) {
  const name = `${prefix}-${Date.now().toString(36)}`;
  const res = await api.post('/api/v1/clusters', { data: {
    name, api_url: KUBE, ca_pem: readFileSync(process.env.KUBE_CA, 'utf8'),
    credential: { kind: 'token', token: process.env.KUBE_PANGEA_TOKEN },
    prometheus_url: PROMETHEUS,
  } });
  expect(res.status(), await res.text()).toBe(201);
  return name;
}

test('a shipped dashboard renders its variables and panels, axe-clean', async ({ page, api }) => {
  const name = await cluster(api, 'dash');
  await open(page, `/clusters/${name}/dashboards`);
  await page.getByRole('link', { name: 'Node', exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Node' })).toBeVisible();
  // The instance variable lists node_exporter's instance from Prometheus, and picks it.
  const instance = page.getByLabel('instance');
  await expect(instance).toHaveValue(/^127\.0\.0\.1:\d+$/, { timeout: 30_000 });
  // A gauge, a time series with its legend, a bar gauge and a table.
  await expect(page.getByRole('img', { name: /^Memory used: [\d.]+ % of 100\.0 %$/ })).toBeVisible({ timeout: 30_000 });
  await expect(page.getByRole('img', { name: /^Memory, latest: / })).toBeVisible();
  await expect(page.locator('.bar-gauge li').first()).toContainText('%');
  const filesystems = page.getByRole('table', { name: 'Filesystems' });
  await expect(filesystems.getByRole('columnheader', { name: 'mountpoint' })).toBeVisible();
  await expect(filesystems.locator('tbody tr').first()).toBeVisible();
  await expectAccessible(page);
  await page.emulateMedia({ colorScheme: 'dark' });
  await expectAccessible(page);
  await page.emulateMedia({ colorScheme: 'light' });

  // A multi-value variable: one verb instead of all, and the choice is in the URL.
  await open(page, `/clusters/${name}/dashboards/pangea-cluster`);
  const verbs = page.getByRole('group', { name: 'verb' });
  await expect(verbs.getByLabel('All')).toBeChecked();
  await verbs.getByLabel('GET', { exact: true }).check();
  await expect(page).toHaveURL(/var-verb=GET$/);
  await expect(verbs.getByLabel('All')).not.toBeChecked();
  await expect(page.getByRole('img', { name: /^API requests by code, latest: / })).toBeVisible({ timeout: 30_000 });
  await expectAccessible(page);
  await api.delete(`/api/v1/clusters/${name}`);
});

test('a Grafana dashboard is imported by upload, and panels Pangea does not draw say so', async ({ page, api }) => {
  const name = await cluster(api, 'import');
  const uid = `e2e-${Date.now().toString(36)}`;
  const model = { dashboard: { uid, title: 'Imported in e2e', panels: [
    { id: 1, type: 'stat', title: 'Targets up', gridPos: { w: 8 }, targets: [{ refId: 'A', expr: 'sum(up)', instant: true }] },
    { id: 2, type: 'piechart', title: 'Jobs', gridPos: { w: 8 }, targets: [{ refId: 'A', expr: 'count by (job) (up)' }] },
  ] } };
  await open(page, `/clusters/${name}/dashboards`);
  await page.getByLabel("Import a dashboard in Grafana's JSON model").setInputFiles({
    name: 'dashboard.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(model)),
  });
  await expect(page.getByText('Imported dashboard Imported in e2e.')).toBeVisible();
  await page.getByRole('link', { name: 'Imported in e2e' }).click();
  await expect(page.locator('#panel-1 .stat-number')).toHaveText(/^\d+$/, { timeout: 30_000 });
  await expect(page.getByText('Pangea does not draw piechart panels.')).toBeVisible();
  await expectAccessible(page);

  // A broken file is refused in words, and nothing is stored.
  await open(page, `/clusters/${name}/dashboards`);
  await page.getByLabel("Import a dashboard in Grafana's JSON model").setInputFiles({
    name: 'broken.json', mimeType: 'application/json', buffer: Buffer.from('{"title": "x"'),
  });
  await expect(page.getByText(/^This is not JSON/)).toBeVisible();
  await page.getByRole('button', { name: 'Remove dashboard Imported in e2e' }).click();
  await expect(page.getByRole('link', { name: 'Imported in e2e' })).toHaveCount(0);
  await api.delete(`/api/v1/clusters/${name}`);
});
