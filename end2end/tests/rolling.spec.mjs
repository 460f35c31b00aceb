// A rolling operation in the browser, against the real kube-apiserver and the Redfish emulator
// .ci/test starts: a person plans a restart of a control-plane node, starts it, sees it wait for
// their approval, resumes it, sees the "nodes Ready" gate pause it in words (the node is not
// Ready), and cancels it.
import { expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { createMachine, expectAccessible, kube, open, signIn, test, uniqueMac } from './support.mjs';

const KUBE = process.env.KUBE_URL;
const BMC = process.env.PANGEA_TEST_BMC_URL;

test.beforeEach(async ({ page }) => {
  test.skip(!KUBE || !BMC, 'no kube-apiserver or Redfish emulator here: rolling operations are not tested');
  await signIn(page);
});

test('a person plans a rolling restart, approves its control-plane node, sees a gate hold it, and cancels it', async ({ page, api }) => {
  const name = `roll-${Date.now().toString(36)}`;
  const node = `${name}-cp`;
  const res = await api.post('/api/v1/clusters', { data: {
    name, api_url: KUBE, ca_pem: readFileSync(process.env.KUBE_CA, 'utf8'),
    credential: { kind: 'token', token: process.env.KUBE_PANGEA_TOKEN },
  } });
  expect(res.status(), await res.text()).toBe(201);
  // A control-plane node whose kubelet says it is not Ready, and its machine, with a BMC.
  await kube('/api/v1/nodes', { method: 'POST', body: JSON.stringify({ metadata: { name: node, labels: {
    'node-role.kubernetes.io/control-plane': '', 'e2e-roll': name } } }) });
  await kube(`/api/v1/nodes/${node}/status`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: JSON.stringify({
    status: { conditions: [{ type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: 'container runtime is down',
      lastHeartbeatTime: new Date().toISOString(), lastTransitionTime: new Date().toISOString() }] } }) });
  const machine = await createMachine(api, { mac: uniqueMac(), hostname: node });
  const bmc = await api.put(`/api/v1/machines/${machine.id}/bmc`, { data: {
    url: BMC, username: process.env.PANGEA_TEST_BMC_USER, password: process.env.PANGEA_TEST_BMC_PASSWORD } });
  expect(bmc.status(), await bmc.text()).toBe(200);

  await open(page, '/clusters');
  await page.getByRole('link', { name: 'Rolling operations' }).click();
  await expect(page.getByRole('heading', { name: 'Rolling operations' })).toBeVisible();
  const form = page.getByRole('form', { name: 'Rolling operation' });
  await form.getByLabel('Cluster', { exact: true }).fill(name);
  await form.getByLabel(/Nodes/).fill(`e2e-roll=${name}`);
  await form.getByLabel('Soak after each step (seconds)').fill('5');
  await form.getByLabel(/Nodes/).press('Enter');
  const plan = page.getByRole('region', { name: 'Plan' });
  await expect(plan).toContainText(`A rolling restart of 1 node(s) of ${name} in 1 step(s)`);
  await expect(plan.getByRole('cell', { name: node, exact: true })).toBeVisible();
  await expect(plan.getByRole('cell', { name: 'PodDisruptionBudgets' })).toBeVisible();
  await expectAccessible(page);

  // Started with approval: it waits for a person before the control-plane node.
  await form.getByLabel('Wait for a person before each control-plane node').check();
  await form.getByRole('button', { name: 'Start' }).click();
  const operation = page.getByRole('region', { name: 'Operation' });
  await expect(operation).toContainText(`Paused: approval: control-plane node ${node} waits for a person; resume to restart it`);
  await expectAccessible(page);
  await page.emulateMedia({ colorScheme: 'dark' });
  await expectAccessible(page);
  await page.emulateMedia({ colorScheme: 'light' });

  // Resumed (approved), with the keyboard: the gates are checked, and the node not Ready holds it.
  await operation.getByRole('button', { name: 'Resume' }).focus();
  await page.keyboard.press('Enter');
  await expect(operation).toContainText(/Paused: nodes Ready: not Ready: .*\(NotReady\)/, { timeout: 20_000 });
  await expect(operation).toContainText(`${node} (NotReady)`);
  await expect(operation.getByRole('cell', { name: 'waiting' })).toBeVisible();

  // Cancelled: it ends, saying where, and the buttons go.
  await operation.getByRole('button', { name: 'Cancel' }).click();
  await expect(operation).toContainText('Cancelled at step 1 of 1', { timeout: 20_000 });
  await expect(operation.getByRole('button', { name: 'Resume' })).toHaveCount(0);
  await expectAccessible(page);
  // The node is not Ready: it must not hold other tests' gates.
  await kube(`/api/v1/nodes/${node}`, { method: 'DELETE' });
});
