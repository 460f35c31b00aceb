// Clusters in the browser, against the real kube-apiserver that .ci/test starts: an admin
// registers one with the keyboard, its nodes are live, and an operator cordons a node.
import { expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { expectAccessible, kube, open, signIn, test } from './support.mjs';

const KUBE = process.env.KUBE_URL;

test.beforeEach(async ({ page }) => {
  test.skip(!KUBE, 'no kube-apiserver here (../shared/tools): the cluster pages are not tested');
  await signIn(page);
});

test('an admin registers a cluster, sees its nodes live, and cordons one', async ({ page }) => {
  const name = `e2e-${Date.now().toString(36)}`;
  // Pangea acts as user "admin" on the cluster, whose own RBAC decides: let that user patch
  // nodes (first, so the authorizer has seen it by the time the button is pressed).
  const role = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: `${name}-patch` },
    rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'patch'] }] };
  await kube('/apis/rbac.authorization.k8s.io/v1/clusterroles', { method: 'POST', body: JSON.stringify(role) });
  const binding = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: `${name}-patch` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${name}-patch` },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'admin' }] };
  await kube('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', { method: 'POST', body: JSON.stringify(binding) });
  await open(page, '/clusters/new');
  await expectAccessible(page);
  await page.getByLabel('Name', { exact: true }).first().fill(name);
  await page.getByLabel('API server URL').fill(KUBE);
  await page.getByLabel(/CA bundle/).fill(readFileSync(process.env.KUBE_CA, 'utf8'));
  await page.getByLabel(/bearer token/).fill(process.env.KUBE_PANGEA_TOKEN);
  await page.getByLabel(/bearer token/).press('Enter');
  await expect(page).toHaveURL(new RegExp(`/clusters/${name}$`));
  await expect(page.getByRole('heading', { name: `Cluster ${name}` })).toBeVisible();
  await expect(page.locator('dd .badge')).toHaveText('live');

  // A node appears on the open page without a reload.
  const node = `${name}-n1`;
  await kube('/api/v1/nodes', { method: 'POST', body: JSON.stringify({ metadata: { name: node } }) });
  const row = page.getByRole('row', { name: new RegExp(node) });
  await expect(row).toBeVisible();
  await expectAccessible(page);
  await page.emulateMedia({ colorScheme: 'dark' });
  await expectAccessible(page);

  // The admin is an operator too: cordon from the node page, and the page shows it live.
  await row.getByRole('link', { name: node }).click();
  await expect(page.getByRole('heading', { name: `Node ${node}` })).toBeVisible();
  await page.getByRole('button', { name: 'Cordon', exact: true }).click();
  await expect(page.locator('dl.facts')).toContainText('(cordoned)');
  await expectAccessible(page);
  await expect(page.getByRole('heading', { name: 'Drain' })).toBeVisible();

  // The pods page and the every-cluster nodes page, with their filters.
  await open(page, `/clusters/${name}/pods?phase=Running`);
  await expect(page.getByRole('heading', { name: `Pods of cluster ${name}` })).toBeVisible();
  await expect(page.getByLabel('Phase')).toHaveValue('Running');
  await expectAccessible(page);
  await open(page, `/clusters/nodes?q=${node}`);
  await expect(page.getByRole('row', { name: new RegExp(node) })).toBeVisible();
  await expectAccessible(page);
  await kube(`/api/v1/nodes/${node}`, { method: 'DELETE' });
});
