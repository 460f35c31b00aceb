// The curated Grafana dashboards (server/src/monitoring/dashboards/*.json) against a JSON Schema
// generated from @grafana/schema's TypeScript type `Dashboard`, validated with ajv. No browser
// and no Pangea are needed, but playwright.config.mjs's global setup waits for PANGEA_URL/readyz.
import { test, expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import { createGenerator } from 'ts-json-schema-generator';

const here = dirname(fileURLToPath(import.meta.url));
const DASHBOARDS = join(here, '..', '..', 'server', 'src', 'monitoring', 'dashboards');
const TYPES = join(here, '..', 'node_modules', '@grafana', 'schema', 'dist', 'types', 'raw', 'dashboard', 'x', 'types.gen.d.ts');

const EXPECTED = {
  node: { uid: 'pangea-node', title: 'Node' },
  cluster: { uid: 'pangea-cluster', title: 'Cluster' },
  etcd: { uid: 'pangea-etcd', title: 'etcd' },
  pangea: { uid: 'pangea-self', title: 'Pangea' },
};
const PANEL_TYPES = ['timeseries', 'stat', 'gauge', 'bargauge', 'table', 'row'];
const UNITS = ['percentunit', 'bytes', 'Bps', 'reqps', 's', 'short', 'none'];
const MACROS = ['__rate_interval', '__range'];

const load = (name) => JSON.parse(readFileSync(join(DASHBOARDS, `${name}.json`), 'utf8'));

/** ajv's errors, one readable line each: where, what, and the schema rule that said so. */
const readable = (errors) =>
  (errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message} ${JSON.stringify(e.params)} (${e.schemaPath})`);

/** @type {import('ajv').ValidateFunction} */
let validate;

test.beforeAll(() => {
  const started = Date.now();
  const schema = createGenerator({ path: TYPES, type: 'Dashboard' }).createSchema('Dashboard');
  console.log(`JSON Schema for Dashboard generated from @grafana/schema in ${Date.now() - started} ms`);
  // Grafana writes `definition` (the query as the variable editor shows it) on query variables
  // and exports it, but the TypeScript type leaves it out and the generated VariableModel is
  // closed (additionalProperties: false). Allowed here, and nothing else.
  schema.definitions.VariableModel.properties.definition = { type: 'string' };
  validate = new Ajv({ strict: false, allErrors: true }).compile(schema);
});

for (const name of Object.keys(EXPECTED)) {
  test(`${name}.json is a Grafana Dashboard`, () => {
    const valid = validate(load(name));
    expect(readable(validate.errors), `${name}.json against @grafana/schema's Dashboard`).toEqual([]);
    expect(valid).toBe(true);
  });
}

test('the validator fails a dashboard with wrong-typed fields', () => {
  const notArray = { ...load('node'), panels: 'x' };
  expect(validate(notArray)).toBe(false);
  expect(readable(validate.errors)).toContainEqual(expect.stringMatching(/^\/panels: must be array/));

  const wide = structuredClone(load('cluster'));
  wide.panels[0].gridPos.w = 'wide';
  expect(validate(wide)).toBe(false);
  expect(readable(validate.errors)).toContainEqual(expect.stringMatching(/^\/panels\/0\/gridPos\/w: must be number/));
});

// What the schema cannot say: Pangea's own conventions for these dashboards.
test('the dashboards keep to the 24-column grid and Pangea conventions', () => {
  for (const [name, want] of Object.entries(EXPECTED)) {
    const d = load(name);
    expect({ uid: d.uid, title: d.title, tags: d.tags, editable: d.editable }, name).toEqual({ ...want, tags: ['pangea'], editable: false });
    const variables = d.templating.list.map((v) => v.name);
    expect(variables, `${name}: variables`).toContain('datasource');
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size, `${name}: panel ids ${ids}`).toBe(ids.length);
    const cells = new Map();
    const overlaps = [];
    for (const p of d.panels) {
      const where = `${name}: panel ${p.id} "${p.title}"`;
      expect(PANEL_TYPES, where).toContain(p.type);
      const { x, y, w, h } = p.gridPos;
      expect(x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 24, `${where}: ${JSON.stringify(p.gridPos)} leaves the grid`).toBe(true);
      for (let row = y; row < y + h; row++) {
        for (let col = x; col < x + w; col++) {
          const other = cells.get(`${row},${col}`);
          if (other !== undefined && !overlaps.includes(`${other}/${p.id}`)) overlaps.push(`${other}/${p.id}`);
          cells.set(`${row},${col}`, p.id);
        }
      }
      if (p.type === 'row') continue;
      expect(p.description, `${where}: description`).toBeTruthy();
      expect(p.datasource, where).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(UNITS, `${where}: unit`).toContain(p.fieldConfig.defaults.unit);
      const refIds = p.targets.map((t) => t.refId);
      expect(new Set(refIds).size, `${where}: refIds ${refIds}`).toBe(refIds.length);
      for (const t of p.targets) {
        for (const [, ref] of t.expr.matchAll(/\$\{?(\w+)/g)) {
          expect([...MACROS, ...variables], `${where}: $${ref} in ${t.expr}`).toContain(ref);
        }
      }
    }
    expect(overlaps, `${name}: panels that overlap`).toEqual([]);
  }
});
