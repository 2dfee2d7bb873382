/**
 * The proxy's side of the control plane's lease API (`POST/DELETE /v1/leases/<name>`). Every
 * request is bounded in time: a holder must learn quickly that it cannot renew.
 */
import { Agent, request } from 'node:http';
import { nodeHttps } from '../shared/lazy-builtins.js';
import type { AcquireResult } from './leases.js';

/** The control plane's TLS trust and this proxy's token (as for the snapshot stream). */
export interface LeaseClientAuth {
  readonly ca: string | Buffer;
  readonly token: () => string;
}

export class HttpLeaseClient {
  private readonly agent: Agent;

  constructor(private readonly host: string, private readonly port: number, private readonly timeoutMs: number, private readonly auth?: LeaseClientAuth) {
    this.agent = auth ? new (nodeHttps().Agent)({ keepAlive: true, maxSockets: 4, ca: auth.ca, minVersion: 'TLSv1.2' }) : new Agent({ keepAlive: true, maxSockets: 4 });
  }

  async acquire(name: string, holder: string, durationMs: number): Promise<AcquireResult> {
    const r = await this.call('POST', `/v1/leases/${encodeURIComponent(name)}`, JSON.stringify({ holder, durationMs }));
    if (r.status !== 200 && r.status !== 409) throw new Error(`lease ${name}: HTTP ${r.status} ${r.body.slice(0, 200)}`);
    return JSON.parse(r.body) as AcquireResult;
  }

  async release(name: string, holder: string): Promise<void> {
    await this.call('DELETE', `/v1/leases/${encodeURIComponent(name)}?holder=${encodeURIComponent(holder)}`);
  }

  close(): void {
    this.agent.destroy();
  }

  private call(method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {};
      if (this.auth) headers['authorization'] = `Bearer ${this.auth.token()}`;
      const opts = { host: this.host, port: this.port, method, path, agent: this.agent, headers };
      const onResponse = (res: import('node:http').IncomingMessage): void => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      };
      const req = this.auth ? nodeHttps().request(opts, onResponse) : request(opts, onResponse);
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`lease request timed out after ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}
