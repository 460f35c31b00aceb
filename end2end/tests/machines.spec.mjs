import { expect } from '@playwright/test';
import { test, open, signIn, expectAccessible, uniqueMac, createMachine } from './support.mjs';

test.beforeEach(async ({ page }) => {
  await signIn(page);
});

test('add a machine through the form', async ({ page }) => {
  const mac = uniqueMac();
  await open(page, '/machines/new');
  await page.getByLabel('MAC address (required)').fill(mac.toUpperCase().replaceAll(':', '-'));
  await page.getByLabel('Host name').fill('e2e-added.example.com');
  await page.getByLabel('Role').selectOption('controller');
  await page.getByLabel('Labels').fill('rack=r1, zone=a');
  await page.getByRole('button', { name: 'Save machine' }).click();
  await expect(page).toHaveURL(/\/machines$/);
  await expect(page.getByRole('status')).toContainText(`Saved machine ${mac}`);
  await open(page, `/machines?q=${mac}`);
  const row = page.getByRole('row').filter({ hasText: mac });
  await expect(row).toContainText('e2e-added.example.com');
  await expect(row).toContainText('controller');
  await expect(row).toContainText('rack=r1');
});

test('a bad MAC shows a message that quotes it, and nothing is saved', async ({ page, api }) => {
  await open(page, '/machines/new');
  const field = page.getByLabel('MAC address (required)');
  await field.fill('52:54:00:zz:00:01');
  await field.blur();
  await expect(page.locator('#machine-mac-error')).toContainText('"52:54:00:zz:00:01" is not a MAC address');
  await expect(field).toHaveAttribute('aria-invalid', 'true');
  await page.getByRole('button', { name: 'Save machine' }).click();
  await expect(page).toHaveURL(/\/machines\/new$/);
  const list = await (await api.get('/api/v1/machines?search=52:54:00:zz')).json();
  expect(list.items).toEqual([]);
});

test('a MAC that already exists is refused by the server next to the field', async ({ page, api }) => {
  const mac = uniqueMac();
  await createMachine(api, { mac });
  await open(page, '/machines/new');
  await page.getByLabel('MAC address (required)').fill(mac);
  await page.getByRole('button', { name: 'Save machine' }).click();
  await expect(page.locator('#machine-mac-error')).toContainText(`A machine with MAC ${mac} already exists.`);
});

test('import preview shows each line\'s errors, then commits a fixed list', async ({ page, api }) => {
  const [a, b, taken] = [uniqueMac(), uniqueMac(), uniqueMac()];
  await createMachine(api, { mac: taken });
  const broken = ['mac,hostname,role', `${a},imp-a,worker`, '52:54:00:zz:00:00,imp-bad,worker', `${a},imp-dup,worker`, `${taken},imp-taken,worker`].join('\n');
  await open(page, '/machines/import');
  await page.getByLabel('List').fill(broken);
  await page.getByRole('button', { name: 'Preview' }).click();
  await expect(page.locator('.summary')).toContainText('1 machine to create, 3 lines with errors');
  const rows = page.locator('table.import-lines tbody tr');
  await expect(rows).toHaveCount(4);
  await expect(rows.nth(1)).toContainText('3');
  await expect(rows.nth(1)).toContainText('"52:54:00:zz:00:00" is not a MAC address');
  await expect(rows.nth(2)).toContainText(`MAC ${a} is already on line 2.`);
  await expect(rows.nth(3)).toContainText(`A machine with MAC ${taken} already exists.`);
  await expect(page.getByRole('button', { name: /^Import \d+ machines$/ })).toHaveCount(0);
  await expectAccessible(page);

  await page.getByLabel('List').fill(['mac,hostname,role,labels', `${a},imp-a,controller,"batch=e2e"`, `${b},imp-b,worker,batch=e2e`].join('\n'));
  await page.getByRole('button', { name: 'Preview' }).click();
  await expect(page.locator('.summary')).toContainText('2 machines to create, 0 lines with errors');
  await page.getByRole('button', { name: 'Import 2 machines' }).click();
  await expect(page.locator('.alert.success')).toContainText('Imported 2 machines.');
  const list = await (await api.get('/api/v1/machines?search=batch%3De2e')).json();
  expect(list.items.map((m) => m.mac).sort()).toEqual([a, b].sort());
});

test('search finds a machine by host name, label and any MAC form', async ({ page, api }) => {
  const mac = uniqueMac();
  await createMachine(api, { mac, hostname: 'findme-7.example.com', labels: { pool: 'blue' } });
  for (const q of ['findme-7', 'pool=blue', mac.toUpperCase().replaceAll(':', '-')]) {
    await open(page, '/machines');
    await page.getByLabel('Search').fill(q);
    await page.getByRole('button', { name: 'Search' }).click();
    await expect(page).toHaveURL(/q=/);
    await expect(page.getByRole('row').filter({ hasText: mac })).toBeVisible();
  }
  await page.getByLabel('Search').fill('no-such-machine-anywhere');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.getByText('No machine matches this search.')).toBeVisible();
});

test('delete selected machines after confirming', async ({ page, api }) => {
  const mac = uniqueMac();
  await createMachine(api, { mac, hostname: 'doomed-1' });
  await open(page, '/machines?q=doomed-1');
  await page.getByLabel(`Select ${mac}`).check();
  await page.getByRole('button', { name: 'Delete…' }).click();
  await expect(page.getByText('Delete 1 machine? This cannot be undone.')).toBeVisible();
  await page.getByRole('button', { name: 'Confirm delete' }).click();
  await expect(page.getByRole('status')).toContainText('Deleted 1 machine.');
  await expect(page.getByRole('row').filter({ hasText: mac })).toHaveCount(0);
  expect((await api.get(`/api/v1/machines?search=${mac}`).then((r) => r.json())).items).toEqual([]);
});

test('edit a machine and add labels to a selection', async ({ page, api }) => {
  const m = await createMachine(api, { mac: uniqueMac(), hostname: 'edit-me' });
  await open(page, `/machines/${m.id}`);
  await page.getByLabel('Host name').fill('edited-1');
  await page.getByRole('button', { name: 'Save machine' }).click();
  await expect(page).toHaveURL(/\/machines$/);
  await open(page, '/machines?q=edited-1');
  await page.getByLabel(`Select ${m.mac}`).check();
  await page.getByLabel('Add labels').fill('tier=gold');
  await page.getByRole('button', { name: 'Apply labels' }).click();
  await expect(page.getByRole('status')).toContainText('Labelled 1 machine.');
  await expect(page.getByRole('row').filter({ hasText: m.mac })).toContainText('tier=gold');
});

test('keyboard alone adds a machine', async ({ page }) => {
  const mac = uniqueMac();
  await open(page, '/machines');
  for (let i = 0; i < 15; i++) {
    await page.keyboard.press('Tab');
    if ((await page.evaluate(() => document.activeElement?.textContent?.trim())) === 'Add machine') break;
  }
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/machines\/new$/);
  await expect(page.locator('main[data-hydrated="true"]')).toBeAttached();
  // After a client-side navigation the form appears once the page's code has loaded and the
  // role check has answered: a person waits for it too.
  await expect(page.locator('#machine-mac')).toBeVisible();
  for (let i = 0; i < 15; i++) {
    await page.keyboard.press('Tab');
    if ((await page.evaluate(() => document.activeElement?.id)) === 'machine-mac') break;
  }
  await page.keyboard.type(mac);
  await page.keyboard.press('Tab');
  await page.keyboard.type('keyboard-1');
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/machines$/);
  await expect(page.getByRole('status')).toContainText(`Saved machine ${mac}`);
});

test('dark mode follows the OS and the toggle is remembered', async ({ page }) => {
  await page.emulateMedia({ colorScheme: 'dark' });
  await open(page, '/machines');
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(await background()).toBe('rgb(15, 18, 22)');
  await expectAccessible(page);
  await page.getByRole('button', { name: /^Theme:/ }).click(); // system → light
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');
  expect(await background()).toBe('rgb(247, 248, 250)');
  await page.reload();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');
  expect(await background()).toBe('rgb(247, 248, 250)');
  await page.getByRole('button', { name: /^Theme:/ }).click(); // light → dark
  await page.getByRole('button', { name: /^Theme:/ }).click(); // dark → system
  await expect(page.locator('html')).not.toHaveAttribute('data-theme', /.*/);
});

test('pages have no axe-core violations, light and dark, and fit a phone', async ({ page, api }) => {
  await createMachine(api, { mac: uniqueMac(), hostname: 'axe-1', labels: { a: 'b' } });
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const url of ['/machines', '/machines/new', '/machines/import', '/no/such/page']) {
      await open(page, url);
      await expectAccessible(page);
    }
  }
  await page.setViewportSize({ width: 390, height: 844 });
  await open(page, '/machines');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
});

test('unknown pages answer 404 with a way back', async ({ page }) => {
  const res = await page.goto('/no/such/page');
  expect(res.status()).toBe(404);
  await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
});

test('site files have content-hashed names, are cached, revalidated and compressed', async ({ page }) => {
  const request = page.context().request;
  const html = await (await request.get('/machines')).text();
  const files = [...html.matchAll(/\/pkg\/pangea\.[0-9a-zA-Z_-]+\.(css|js|wasm)/g)].map((m) => m[0]);
  expect(new Set(files.map((f) => f.split('.').pop()))).toEqual(new Set(['css', 'js', 'wasm']));
  for (const file of new Set(files)) {
    const res = await request.get(file, { headers: { 'accept-encoding': 'br' } });
    expect(res.status(), file).toBe(200);
    // The entry script is revalidated: cargo-leptos names it before writing the wasm-split
    // loader's name into it, so its name can outlive its content (see static_cache_headers).
    const cache = file.endsWith('.js') ? 'no-cache' : 'public, max-age=31536000, immutable';
    expect(res.headers()['cache-control'], file).toBe(cache);
    expect(res.headers()['content-encoding'], file).toBe('br');
  }
  // Revalidating answers 304 (not the console's "not found" page), and a file of another build
  // is a plain 404.
  const script = files.find((f) => f.endsWith('.js'));
  const modified = (await request.get(script)).headers()['last-modified'];
  expect((await request.get(script, { headers: { 'if-modified-since': modified } })).status()).toBe(304);
  const gone = await request.get('/pkg/chunk_1.AAAAAAAAAAAAAAAAAAAAAA.wasm');
  expect(gone.status()).toBe(404);
  expect(await gone.text()).toBe('');
});

test('a machine class is saved from its page and lists its machines', async ({ page, api }) => {
  const rack = `e2e-class-${Date.now()}`;
  const name = rack.toLowerCase();
  const machine = await createMachine(api, { mac: uniqueMac(), hostname: 'classy', labels: { rack } });
  await open(page, '/machines/classes');
  const form = page.getByRole('form', { name: 'Machine class' });
  await form.getByLabel('Name').fill(name);
  await form.getByLabel('Search').fill('cpus>=lots');
  await form.getByLabel('Search').press('Enter');
  await expect(form.getByRole('alert')).toContainText('whole number');
  await form.getByLabel('Search').fill(`rack=${rack}`);
  await form.getByLabel('Description').fill('One machine, for the browser test');
  await form.getByRole('button', { name: 'Save class' }).click();
  await expect(page.getByText(`Class ${name} saved: 1 machines match it now.`)).toBeVisible();
  const row = page.getByRole('row', { name: new RegExp(name) });
  await expect(row).toContainText(`rack=${rack}`);
  await expectAccessible(page);
  await page.emulateMedia({ colorScheme: 'dark' });
  await expectAccessible(page);
  await page.emulateMedia({ colorScheme: 'light' });

  // Its link lists its machines, and says which class it filters by.
  await row.getByRole('link', { name }).click();
  await expect(page).toHaveURL(new RegExp(`/machines\\?class=${name}`));
  await expect(page.getByLabel(`of class ${name}`)).toBeChecked();
  await expect(page.locator('table.machines tbody tr')).toHaveCount(1);
  await expect(page.locator('table.machines')).toContainText(machine.mac);

  await open(page, '/machines/classes');
  await page.getByRole('button', { name: `Delete class ${name}` }).click();
  await expect(page.getByText('Class deleted.')).toBeVisible();
  await api.delete(`/api/v1/machines/${machine.id}`);
});
