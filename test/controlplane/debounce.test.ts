/**
 * The directory source (control plane and `run --watch`) under the ways files really change:
 * - a writer that never pauses (a change every 50 ms) still gets applied, at least once a second;
 * - atomic saves (write a temp file, rename it over the config), each with the same size;
 * - a Kubernetes ConfigMap volume: the file is a symlink through `..data`, which is swapped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileConfigSource, type ConfigEvent } from '../../src/controlplane/config-source.js';
import { waitFor } from '../helpers/net.js';

/** A config whose only varying part is a fixed-width counter: every version has the same size. */
const entry = (n: number) => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: e, namespace: edge}\nspec: {hosts: [h${String(n).padStart(5, '0')}.example.com], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS}\n`;

function hostOf(e: ConfigEvent): string | undefined {
  if (e.kind !== 'accepted') return undefined;
  const r = e.config.model.resources.find((x) => x.kind === 'ServiceEntry');
  return ((r?.body['spec'] as { hosts?: string[] } | undefined)?.hosts ?? [])[0];
}

function source(t: { after(fn: () => void): void }, paths: string[]): { src: FileConfigSource; applied: { host: string; at: number }[] } {
  const src = new FileConfigSource({ paths, debounceMs: 200, maxDebounceMs: 1000 });
  const applied: { host: string; at: number }[] = [];
  src.onChange((e) => {
    const h = hostOf(e);
    if (h) applied.push({ host: h, at: Date.now() });
  });
  assert.equal(src.reload().kind, 'accepted');
  applied.length = 0;
  src.watch();
  t.after(() => src.close());
  return { src, applied };
}

test('1,000 writes at 50 ms intervals: applied again and again (at most ~1 s apart), and the last one applied', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-debounce-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, entry(0));
  const { applied } = source(t, [dir]);
  const started = Date.now();
  for (let n = 1; n <= 1000; n++) {
    writeFileSync(file, entry(n));
    await new Promise((r) => setTimeout(r, 50));
  }
  const writingMs = Date.now() - started;
  await waitFor(() => applied.at(-1)?.host === 'h01000.example.com', 5000, 'the last write applied');
  const during = applied.filter((a) => a.at <= started + writingMs);
  t.diagnostic(`${during.length} applies during ${writingMs} ms of continuous writes`);
  // The quiet period (200 ms) never comes; the 1 s ceiling must fire anyway. Generous for a loaded box.
  assert.ok(during.length >= writingMs / 1000 / 3, `only ${during.length} applies in ${writingMs} ms`);
  const gaps = during.slice(1).map((a, i) => a.at - during[i]!.at);
  assert.ok(Math.max(0, ...gaps) < 5000, `longest gap between applies ${Math.max(...gaps)} ms`);
});

test('atomic saves (temp file renamed over the config), same size each time: every one applied', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-rename-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, entry(0));
  const { applied } = source(t, [file]);
  for (let n = 1; n <= 20; n++) {
    const tmp = join(dir, `.config.yaml.${n}.tmp`);
    writeFileSync(tmp, entry(n));
    renameSync(tmp, file);
    const want = `h${String(n).padStart(5, '0')}.example.com`;
    await waitFor(() => applied.at(-1)?.host === want, 5000, `save ${n} applied`);
  }
  assert.equal(new Set(applied.map((a) => a.host)).size, 20);
});

test('ConfigMap volume (file -> ..data/file, ..data swapped by rename): every update applied', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-configmap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // What the kubelet's atomic writer does: a timestamped directory, `..data` pointing at it, and
  // the visible file a symlink through `..data`.
  const version = (n: number): void => {
    const ts = `..2026_12_01_00_00_00.${n}`;
    mkdirSync(join(dir, ts));
    writeFileSync(join(dir, ts, 'config.yaml'), entry(n));
    symlinkSync(ts, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  };
  version(0);
  symlinkSync('..data/config.yaml', join(dir, 'config.yaml'));
  const { applied } = source(t, [join(dir, 'config.yaml')]);
  for (let n = 1; n <= 10; n++) {
    version(n);
    const want = `h${String(n).padStart(5, '0')}.example.com`;
    await waitFor(() => applied.at(-1)?.host === want, 5000, `ConfigMap update ${n} applied`);
  }
});
