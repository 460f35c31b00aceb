// Health charts in the browser, from the real Prometheus .ci/test starts (scraping a real
// node_exporter, the kube-apiserver and its etcd): the node page draws node_exporter's series,
// hover values come with the arrow keys, ranges change, and the page stays axe-clean.
import { expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createMachine, expectAccessible, kube, open, signIn, test, uniqueMac } from './support.mjs';

const KUBE = process.env.KUBE_URL;
const PROMETHEUS = process.env.PANGEA_TEST_PROMETHEUS_URL;
const ALERTMANAGER = process.env.PANGEA_TEST_ALERTMANAGER_URL;

test.beforeEach(async ({ page }) => {
  test.skip(!KUBE || !PROMETHEUS, 'no kube-apiserver or Prometheus here: the charts are not tested');
  await signIn(page);
});

test('a node page charts node_exporter, shows its alert, and silences it in the person\'s name', async ({ page, api }) => {
  const name = `charts-${Date.now().toString(36)}`;
  const res = await api.post('/api/v1/clusters', { data: {
    name, api_url: KUBE, ca_pem: readFileSync(process.env.KUBE_CA, 'utf8'),
    credential: { kind: 'token', token: process.env.KUBE_PANGEA_TOKEN },
    prometheus_url: PROMETHEUS, alertmanager_url: ALERTMANAGER,
  } });
  expect(res.status(), await res.text()).toBe(201);
  // A node on this host, as its kubelet would report it: node_exporter's instance is its address.
  const node = `${name}-n1`;
  await kube('/api/v1/nodes', { method: 'POST', body: JSON.stringify({ metadata: { name: node } }) });
  await kube(`/api/v1/nodes/${node}/status`, { method: 'PATCH', contentType: 'application/merge-patch+json',
    body: JSON.stringify({ status: { addresses: [{ type: 'InternalIP', address: '127.0.0.1' }] } }) });

  // The page draws its charts once, for the addresses Pangea's watch cache has: wait until the
  // patch has reached it, or the charts would match the node by name only and find nothing.
  await expect.poll(async () => {
    const res = await api.get(`/api/v1/clusters/${name}/nodes/${node}`);
    return res.ok() ? (await res.json()).addresses : [];
  }, { timeout: 30_000 }).toContainEqual(['InternalIP', '127.0.0.1']);
  await open(page, `/clusters/${name}/nodes/${node}`);
  const memory = page.getByRole('img', { name: /^Memory, latest: used .* total / });
  await expect(memory).toBeVisible({ timeout: 30_000 });
  // Hover values with the keyboard: the last instant, with its time and both lines.
  await memory.focus();
  await page.keyboard.press('End');
  const readout = page.locator('#chart-memory-readout');
  await expect(readout).toContainText(/\d\d:\d\d UTC/);
  await expect(readout).toContainText(/used: [\d.]+ GiB/);
  // The table alternative has a row per instant.
  await page.locator('#chart-memory summary').click();
  await expect(page.locator('#chart-memory tbody tr').first()).toBeVisible();
  await expectAccessible(page);
  await page.emulateMedia({ colorScheme: 'dark' });
  await expectAccessible(page);

  // The test rule fires about this node's exporter: silence it from its row, with the alert's
  // labels as matchers, and Alertmanager has the silence in the admin's name.
  await page.emulateMedia({ colorScheme: 'light' });
  const alert = page.getByRole('row', { name: /NodeExporterUp firing warning/ });
  await expect(alert).toBeVisible({ timeout: 30_000 });
  await expect(page.getByRole('link', { name: 'Clusters' })).toContainText(/alerts firing/);
  await alert.getByRole('button', { name: 'Silence NodeExporterUp' }).click();
  await expect(page.getByLabel(/^Matchers/)).toBeFocused();
  await expect(page.getByLabel(/^Matchers/)).toHaveValue(/alertname=NodeExporterUp/);
  await page.getByLabel('Why').fill('e2e: planned work');
  await page.getByRole('button', { name: 'Create silence' }).click();
  const silence = page.getByRole('row', { name: /e2e: planned work/ });
  await expect(silence).toContainText('admin');
  await expect(alert).toHaveCount(0);
  const silences = await (await fetch(`${ALERTMANAGER}/api/v2/silences`)).json();
  const created = silences.find((s) => s.comment === 'e2e: planned work');
  expect(created.createdBy).toBe('admin');
  await expectAccessible(page);
  await silence.getByRole('button', { name: /^Expire/ }).click();
  await expect(silence).toHaveCount(0);

  // Another range asks again: the axis starts six hours back. Memory is a gauge, so it has a
  // latest value however young this Prometheus is; a rate such as CPU needs two samples per
  // step, and a step is 72 s at 6h.
  const axisStart = page.locator('#chart-memory .chart-axis span').first();
  const oneHourBack = await axisStart.textContent();
  await page.getByRole('button', { name: '6h', exact: true }).click();
  await expect(page.getByRole('button', { name: '6h', exact: true })).toHaveAttribute('aria-pressed', 'true');
  await expect(axisStart).not.toHaveText(oneHourBack);
  const sixHoursBack = (await axisStart.textContent()).split(':').map(Number);
  const minutesBack = (new Date().getUTCHours() * 60 + new Date().getUTCMinutes() - sixHoursBack[0] * 60 - sixHoursBack[1] + 1440) % 1440;
  expect(minutesBack).toBeGreaterThanOrEqual(359);
  expect(minutesBack).toBeLessThanOrEqual(363);
  await expect(page.getByRole('img', { name: /^Memory, latest: used .* total / })).toBeVisible();

  // The inventory machine this node is (by host name) has the node's charts beside its boot
  // timeline.
  const machine = await createMachine(api, { mac: uniqueMac(), hostname: node });
  await open(page, `/machines/${machine.id}`);
  await expect(page.getByRole('link', { name: node, exact: true })).toBeVisible({ timeout: 30_000 });
  await expect(page.getByRole('img', { name: /^Memory, latest: used .* total / })).toBeVisible({ timeout: 30_000 });
  await expectAccessible(page);
  await api.delete(`/api/v1/machines/${machine.id}`);

  // The cluster page charts the API server from its own metrics.
  await open(page, `/clusters/${name}`);
  await expect(page.getByRole('img', { name: /^API requests, latest: / })).toBeVisible({ timeout: 30_000 });
  await expectAccessible(page);
  await kube(`/api/v1/nodes/${node}`, { method: 'DELETE' });
  await api.delete(`/api/v1/clusters/${name}`);
});

test('the cluster page warns when one etcd member of three is down', async ({ page, api }) => {
  // .ci/monitoring-up starts three etcd members and a Prometheus scraping only them.
  const QUORUM = process.env.PANGEA_TEST_QUORUM_PROMETHEUS_URL;
  const members = (process.env.PANGEA_TEST_ETCD_MEMBER_PIDS || '').split(',').filter(Boolean);
  test.skip(!QUORUM || members.length !== 3, 'no three-member etcd here: the quorum banner is not tested');
  const name = `quorum-${Date.now().toString(36)}`;
  const res = await api.post('/api/v1/clusters', { data: {
    name, api_url: KUBE, ca_pem: readFileSync(process.env.KUBE_CA, 'utf8'),
    credential: { kind: 'token', token: process.env.KUBE_PANGEA_TOKEN }, prometheus_url: QUORUM,
  } });
  expect(res.status(), await res.text()).toBe(201);
  await open(page, `/clusters/${name}`);
  const etcd = page.getByRole('region', { name: 'etcd' });
  // The panel asks once per page load: reload until Prometheus has scraped all three.
  await expect(async () => {
    await page.reload();
    await expect(etcd).toContainText('3 members, 3 healthy: one may fail', { timeout: 2_000 });
  }).toPass({ timeout: 30_000 });
  await expect(page.getByRole('alert').filter({ hasText: 'Quorum at risk' })).toHaveCount(0);

  // One member dies, as its machine would: the banner says what one more loss would do.
  process.kill(Number(members[0]), 'SIGKILL');
  const banner = page.getByRole('alert').filter({ hasText: 'Quorum at risk' });
  await expect(async () => {
    await page.reload();
    await expect(banner).toContainText('3 members, 2 healthy: losing one more stops the cluster', { timeout: 2_000 });
  }).toPass({ timeout: 30_000 });
  await expect(etcd.getByRole('cell', { name: 'down' })).toHaveCount(1);
  await expectAccessible(page);
  await api.delete(`/api/v1/clusters/${name}`);
});

test('a script on Grafana\'s own origin cannot call the console as the person', async ({ page, api }) => {
  // A stand-in Grafana whose every page runs a script that calls the console's API with the
  // person's cookies, as an HTML panel or a plugin could, and writes down what each call gave.
  const consoleOrigin = new URL(page.url()).origin;
  const mac = uniqueMac();
  const script = `
    const tries = {
      'GET /api/v1/machines': () => fetch('${consoleOrigin}/api/v1/machines', { credentials: 'include' }),
      'POST /api/v1/machines': () => fetch('${consoleOrigin}/api/v1/machines', { method: 'POST', credentials: 'include',
        headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ mac: '${mac}' }) }),
      'POST /api/gui/current_user': () => fetch('${consoleOrigin}/api/gui/current_user', { method: 'POST',
        credentials: 'include', headers: { 'content-type': 'text/plain' }, body: '{}' }),
      'blind POST /api/v1/machines': () => fetch('${consoleOrigin}/api/v1/machines', { method: 'POST', mode: 'no-cors',
        credentials: 'include', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ mac: '${mac}' }) }),
      'GET /api/v1/machines here': () => fetch('/api/v1/machines', { credentials: 'include' }),
    };
    (async () => {
      const results = {};
      for (const [name, attempt] of Object.entries(tries)) {
        try {
          const res = await attempt();
          results[name] = res.type === 'opaque' ? 'opaque' : res.status + ' ' + (await res.text()).slice(0, 200);
        } catch (e) {
          results[name] = 'blocked';
        }
      }
      document.getElementById('out').textContent = JSON.stringify(results);
    })();`;
  const grafana = createServer((req, res) => {
    // Grafana's health answer, which Pangea checks when the cluster links it.
    if (req.url === '/api/health') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ database: 'ok', version: 'stand-in' }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><html lang="en"><title>Grafana</title><pre id="out"></pre><script>${script}</script></html>`);
  });
  await new Promise((resolve) => grafana.listen(0, '127.0.0.1', resolve));
  try {
    const name = `elsewhere-${Date.now().toString(36)}`;
    const res = await api.post('/api/v1/clusters', { data: {
      name, api_url: KUBE, ca_pem: readFileSync(process.env.KUBE_CA, 'utf8'),
      credential: { kind: 'token', token: process.env.KUBE_PANGEA_TOKEN },
      grafana_url: `http://127.0.0.1:${grafana.address().port}`,
    } });
    expect(res.status(), await res.text()).toBe(201);
    // The console hands the person over to Grafana's origin, which signs in with its own cookie.
    await page.goto(`/grafana/${name}/d/panel?orgId=1&kiosk`);
    const grafanaOrigin = new URL(page.url()).origin;
    expect(grafanaOrigin).not.toBe(consoleOrigin);
    expect(new URL(page.url()).pathname).toBe(`/grafana/${name}/d/panel`);
    // Its pass is for this cluster's Grafana (the cookie's path), and the console's never came.
    const cookies = (await page.context().cookies(page.url())).map((c) => c.name);
    expect(cookies).toContain('pangea_grafana');
    expect(cookies).not.toContain('pangea_session');

    const out = page.locator('#out');
    await expect(out).not.toBeEmpty();
    const results = JSON.parse(await out.textContent());
    for (const [call, result] of Object.entries(results)) {
      expect(['blocked', 'opaque', '404 '].includes(result) || /^40[13] /.test(result), `${call}: ${result}`).toBe(true);
    }
    // The blind write did nothing either.
    const found = await (await api.get(`/api/v1/machines?search=${encodeURIComponent(mac)}`)).json();
    expect(found.items).toEqual([]);
    await api.delete(`/api/v1/clusters/${name}`);
  } finally {
    grafana.close();
  }
});
