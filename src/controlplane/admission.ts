/**
 * The validating admission webhook: AdmissionReview v1 in, AdmissionReview v1 out. The object under
 * review goes through the same decoder (and, for an egress-router Deployment, the same EGRESS_* env
 * parser) as every config Tollgate reads, so what `analyze` calls an error is what `kubectl apply`
 * is refused with. A document read from a request has no lines, so each "line" a diagnostic points
 * at is mapped back to the field it was asked for: `spec.http[0].timeout`, or
 * `spec.template.spec.containers[0].env[2].value (line 3)` inside a multi-line value.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Diagnostic } from '../config/diagnostics.js';
import { decodeResources, type Resource } from '../config/decode.js';
import type { RawDocument } from '../config/load.js';
import type { DeploymentSpec } from '../config/types.js';
import { injectDocument, type InjectOptions } from '../inject/inject.js';
import { parseEgressRouter } from '../model/egress-router.js';

type Path = readonly (string | number)[];

export interface AdmissionVerdict {
  readonly allowed: boolean;
  /** One line per error: `<field path>: <message> (fix: <hint>)`. */
  readonly errors: readonly string[];
  readonly warnings: readonly string[];
}

/** Groups whose every kind is reviewed; Deployments are reviewed only when they are egress routers. */
export const REVIEWED_GROUPS = ['networking.istio.io', 'security.istio.io', 'k8s.ovn.org'] as const;

function formatPath(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** Hands out fake line numbers, one per field asked about, and maps them back to field paths. */
class FieldLines {
  private readonly fields: string[] = ['(object)'];

  lineOf(path: Path): number {
    this.fields.push(formatPath(path));
    return this.fields.length;
  }

  blockStartLine(value: unknown, path: Path): number {
    let v: unknown = value;
    for (const p of path) v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[p] : undefined;
    const lines = typeof v === 'string' ? v.split('\n').length : 1;
    const start = this.fields.length + 1;
    for (let i = 1; i <= lines; i++) this.fields.push(`${formatPath(path)} (line ${i})`);
    return start;
  }

  field(line: number | undefined): string {
    return this.fields[(line ?? 1) - 1] ?? '(object)';
  }
}

/** Reviews one object as the API server sends it (server-managed metadata is ignored by the decoder). */
export function reviewObject(object: Record<string, unknown>): AdmissionVerdict {
  const lines = new FieldLines();
  const doc: RawDocument = {
    value: object,
    file: 'admission',
    line: 1,
    lineOf: (p) => lines.lineOf(p),
    blockStartLine: (p) => lines.blockStartLine(object, p),
  };
  const decoded = decodeResources([doc]);
  const diagnostics: Diagnostic[] = [...decoded.diagnostics];
  for (const r of decoded.resources) if (r.kind === 'Deployment') parseEgressRouter(r as Resource<DeploymentSpec>, diagnostics);
  const describe = (d: Diagnostic): string => {
    const field = lines.field((d.pos ?? d.resource?.pos)?.line);
    return `${d.message.startsWith(field) ? '' : `${field}: `}${d.message}${d.hint ? ` (fix: ${d.hint})` : ''}`;
  };
  const errors = diagnostics.filter((d) => d.severity === 'error').map(describe);
  return { allowed: errors.length === 0, errors, warnings: diagnostics.filter((d) => d.severity === 'warning').map(describe) };
}

interface AdmissionRequest {
  uid?: unknown;
  kind?: { group?: string; kind?: string };
  operation?: string;
  object?: unknown;
}

/** AdmissionReview v1 request -> response. DELETE and CONNECT are always allowed (nothing to validate). */
export function review(body: unknown): Record<string, unknown> {
  const request = (body as { request?: AdmissionRequest } | null)?.request;
  const uid = typeof request?.uid === 'string' ? request.uid : '';
  const respond = (allowed: boolean, extra: Record<string, unknown> = {}) => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed, ...extra } });
  const object = request?.object;
  if (!request || request.operation === 'DELETE' || request.operation === 'CONNECT' || object === null || typeof object !== 'object') return respond(true);
  const verdict = reviewObject(object as Record<string, unknown>);
  const warnings = verdict.warnings.length ? { warnings: verdict.warnings.slice(0, 10) } : {};
  if (verdict.allowed) return respond(true, warnings);
  const meta = ((object as { metadata?: { name?: string; namespace?: string } }).metadata ?? {});
  const what = `${request.kind?.kind ?? 'object'} ${meta.namespace ? `${meta.namespace}/` : ''}${meta.name ?? ''}`;
  return respond(false, { ...warnings, status: { code: 400, reason: 'Invalid', message: `Tollgate rejected ${what}:\n${verdict.errors.join('\n')}` } });
}

/**
 * The mutating side: a Pod being created gets what `tollgate inject` adds (the same function), as one
 * JSONPatch. Which namespaces are injected is the MutatingWebhookConfiguration's namespaceSelector;
 * `sidecar.istio.io/inject: "false"` on the pod is honoured here.
 */
export function injectReview(body: unknown, o: InjectOptions): Record<string, unknown> {
  const request = (body as { request?: AdmissionRequest } | null)?.request;
  const uid = typeof request?.uid === 'string' ? request.uid : '';
  const respond = (extra: Record<string, unknown> = {}) => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true, ...extra } });
  if (request?.operation !== 'CREATE' || request.kind?.kind !== 'Pod') return respond();
  const result = injectDocument(request.object, o);
  if (!result.injected) return respond();
  const pod = result.doc as { spec?: unknown; metadata?: { annotations?: unknown } };
  // `add` replaces a member that exists: the whole spec and annotations, as injected.
  const patch = [
    { op: 'add', path: '/spec', value: pod.spec },
    { op: 'add', path: '/metadata/annotations', value: pod.metadata?.annotations ?? {} },
  ];
  return respond({ patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') });
}

export interface WebhookOptions {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Serve POST /inject (sidecar injection) with these settings. */
  readonly inject?: InjectOptions;
  readonly log?: (line: string) => void;
}

/** The HTTPS endpoint: POST /validate (and /inject) with an AdmissionReview; /healthz for probes. Bodies over 3 MiB are refused (the API server's own limit). */
export class AdmissionWebhook {
  private readonly server: Server;
  private readonly inject: InjectOptions | undefined;

  constructor(opts: WebhookOptions) {
    this.inject = opts.inject;
    this.server = createServer({ cert: opts.cert, key: opts.key, minVersion: 'TLSv1.2' }, (req, res) => this.handle(req, res, opts.log));
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  private handle(req: IncomingMessage, res: ServerResponse, log: ((line: string) => void) | undefined): void {
    const url = new URL(req.url ?? '/', 'https://webhook');
    if (req.method === 'GET' && url.pathname === '/healthz') return send(res, 200, { ok: true });
    const inject = this.inject;
    if (req.method !== 'POST' || (url.pathname !== '/validate' && !(url.pathname === '/inject' && inject))) return send(res, 404, { error: `POST /validate${inject ? ' or /inject' : ''} with an AdmissionReview` });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 3 * 1024 * 1024) {
        send(res, 413, { error: 'request too large' });
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return send(res, 400, { error: 'body is not JSON' });
      }
      if (url.pathname === '/inject' && inject) return send(res, 200, injectReview(body, inject));
      const answer = review(body);
      const response = answer['response'] as { allowed: boolean; status?: { message: string } };
      if (!response.allowed) log?.(`admission: denied ${response.status?.message.split('\n').join(' | ') ?? ''}`);
      send(res, 200, answer);
    });
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
