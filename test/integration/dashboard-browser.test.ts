/**
 * The admin dashboard in a real browser: Debian's headless Chromium, driven by playwright-core
 * (no browser download). The test sends traffic through a report-only egress gateway, waits for
 * the flow to appear in the page, checks a denial row with its reason and fix hint and a would-be
 * denial with its suggested ServiceEntry, saves a screenshot under test-output/, and requires no
 * console error and no request leaving the admin origin (the page is self-contained).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort, startDnsmasq } from '../helpers/dns.js';
import { startHttpUpstream } from '../helpers/http.js';
import { loopbackAddress } from '../helpers/net.js';
import { REPO_ROOT, startGate } from '../helpers/tollgate.js';
import { requireTools, run } from '../helpers/tools.js';

const CHROMIUM = '/usr/bin/chromium';

/** The part of playwright-core's API this test uses (typed here so the build does not need the package). */
interface Handle {
  textContent(): Promise<string | null>;
}
interface Page {
  on(event: 'console', fn: (m: { type(): string; text(): string }) => void): void;
  on(event: 'pageerror', fn: (e: Error) => void): void;
  on(event: 'request', fn: (r: { url(): string }) => void): void;
  goto(url: string): Promise<unknown>;
  waitForSelector(sel: string, o: { timeout: number }): Promise<Handle>;
  waitForFunction(expr: string, arg: undefined, o: { timeout: number }): Promise<unknown>;
  $$eval<R>(sel: string, fn: (els: { textContent: string | null }[]) => R): Promise<R>;
  click(sel: string): Promise<void>;
  textContent(sel: string): Promise<string | null>;
  screenshot(o: { path: string; fullPage: boolean }): Promise<unknown>;
}
interface Chromium {
  launchPersistentContext(dir: string, o: Record<string, unknown>): Promise<{ newPage(): Promise<Page>; close(): Promise<void> }>;
}

/** playwright-core is a dev dependency, installed by npm install: missing is a failure, never a skip. */
async function loadPlaywright(): Promise<Chromium> {
  const name = 'playwright-core'; // a variable keeps tsc from resolving the module
  try {
    return ((await import(name)) as { chromium: Chromium }).chromium;
  } catch (e) {
    throw new Error(`needs the npm dev dependency playwright-core (run npm install): ${(e as Error).message}`);
  }
}
export const OUTPUT_DIR = join(REPO_ROOT, 'test-output');

test('dashboard in headless Chromium: live flow, denial with reason and hint, would-be denial with its ServiceEntry; no console errors', async (t) => {
  if (!requireTools(t, 'chromium', 'curl', 'dnsmasq')) return;
  const chromium = await loadPlaywright();
  const upIp = loopbackAddress();
  const forbiddenIp = loopbackAddress();
  const up = await startHttpUpstream(upIp);
  const dns = await startDnsmasq({ 'api.partner.example': upIp, 'unlisted.example': upIp, 'metadata.example': forbiddenIp });
  const dir = mkdtempSync(join(tmpdir(), 'tg-dash-'));
  const cfg = join(dir, 'config.yaml');
  writeFileSync(cfg, `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: partner, namespace: egress}
spec:
  hosts: [api.partner.example]
  ports: [{number: ${up.port}, name: http, protocol: HTTP}]
  resolution: DNS
`);
  const proxyPort = await freeTcpPort();
  const adminPort = await freeTcpPort();
  const gate = await startGate(['-f', cfg, '-n', 'egress', '--explicit-proxy', `127.0.0.1:${proxyPort}`, '--report-only', '--admin', `127.0.0.1:${adminPort}`, '--dns-server', dns.server, '--allow-cidr', upIp]);
  const profile = mkdtempSync(join(tmpdir(), 'tg-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  const origin = `http://127.0.0.1:${adminPort}`;
  const consoleErrors: string[] = [];
  const foreign: string[] = [];
  try {
    const page = await browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    page.on('request', (r) => {
      if (!r.url().startsWith(origin + '/') && !r.url().startsWith('data:')) foreign.push(r.url());
    });
    await page.goto(origin + '/');
    await page.waitForSelector('#flows td.empty', { timeout: 15_000 });

    const proxy = `http://127.0.0.1:${proxyPort}`;
    const curl = (url: string) => run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '-x', proxy, url]);
    for (let i = 0; i < 3; i++) assert.equal((await curl(`http://api.partner.example:${up.port}/orders`)).stdout, '200');
    assert.equal((await curl(`http://unlisted.example:${up.port}/`)).stdout, '200', 'report-only passes it');
    assert.equal((await curl(`http://metadata.example:${up.port}/`)).stdout, '403', 'the SSRF guard still refuses');

    // The page polls: wait until the row shows all three requests.
    await page.waitForFunction(`document.querySelector('#flows tr[data-dest="api.partner.example"]')?.cells[3]?.textContent === '3'`, undefined, { timeout: 15_000 });
    const cells = await page.$$eval('#flows tr[data-dest="api.partner.example"] td', (tds) => tds.map((td) => td.textContent ?? ''));
    assert.deepEqual([cells[0], cells[1], cells[2], cells[3], cells[4], cells[7]], ['egress / tollgate', 'api.partner.example', 'http', '3', '0', 'yes']);
    const denial = await page.waitForSelector('#denials tr[data-reason="ssrf_denied"]', { timeout: 15_000 });
    assert.match((await denial.textContent()) ?? '', /ssrf_denied.*1.*private, loopback or metadata address/);
    const wouldDeny = await page.waitForSelector('#wouldDeny tr[data-host="unlisted.example"]', { timeout: 15_000 });
    assert.match((await wouldDeny.textContent()) ?? '', new RegExp(`unlisted\\.example:${up.port}.*HTTP.*1.*egress`));
    await page.click('#wouldDeny tr[data-host="unlisted.example"] button');
    const yaml = await page.waitForSelector('#wouldDeny pre.yaml', { timeout: 15_000 });
    const yamlText = (await yaml.textContent()) ?? '';
    assert.match(yamlText, /kind: ServiceEntry/);
    assert.match(yamlText, new RegExp(`hosts:\\n\\s+- unlisted\\.example\\n\\s+ports:\\n\\s+- number: ${up.port}\\n\\s+name: http-${up.port}\\n\\s+protocol: HTTP`));
    assert.match((await page.textContent('#mode')) ?? '', /REPORT-ONLY/);

    mkdirSync(OUTPUT_DIR, { recursive: true });
    const shot = join(OUTPUT_DIR, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(foreign, [], 'the page loads nothing from outside the admin address');
  } finally {
    await browser.close();
    await gate.stop();
    await dns.stop();
    await up.close();
    rmSync(profile, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});
