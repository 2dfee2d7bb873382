/**
 * Diagnostics: every problem found in config carries a stable code, the resource it concerns and
 * the file:line where that resource (or the offending field) was written, plus a one-line fix.
 */
export type Severity = 'error' | 'warning' | 'info';

export interface SourcePos {
  readonly file: string;
  readonly line: number;
}

/** Identifies a resource as `Kind name.namespace`, with where it was written. */
export interface ResourceRef {
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
  readonly pos: SourcePos;
}

export interface Diagnostic {
  readonly severity: Severity;
  readonly code: string;
  readonly message: string;
  readonly resource?: ResourceRef;
  readonly pos?: SourcePos;
  readonly hint?: string;
  /** The istioctl analyze message for the same problem, when Istio has one (`IST0101`, `ReferencedResourceNotFound`). */
  readonly istio?: { readonly code: string; readonly name: string };
}

export function formatPos(pos: SourcePos): string {
  return `${pos.file}:${pos.line}`;
}

export function formatRef(ref: ResourceRef): string {
  return `${ref.kind} ${ref.name}${ref.namespace ? '.' + ref.namespace : ''}`;
}

/** `Error [TG_X] ServiceEntry foo.ns (file.yaml:22): message` then an indented hint line. */
export function formatDiagnostic(d: Diagnostic): string {
  const sev = d.severity === 'error' ? 'Error' : d.severity === 'warning' ? 'Warning' : 'Info';
  const pos = d.pos ?? d.resource?.pos;
  const subject = d.resource ? `${formatRef(d.resource)} (${pos ? formatPos(pos) : '?'})` : pos ? `(${formatPos(pos)})` : '';
  const head = `${sev} [${d.code}] ${subject}${subject ? ': ' : ''}${d.message}${d.istio ? ` [${d.istio.code} ${d.istio.name}]` : ''}`;
  return d.hint ? `${head}\n    fix: ${d.hint}` : head;
}

export function hasErrors(diags: readonly Diagnostic[]): boolean {
  return diags.some((d) => d.severity === 'error');
}

export function sortDiagnostics(diags: readonly Diagnostic[]): Diagnostic[] {
  const key = (d: Diagnostic) => {
    const p = d.pos ?? d.resource?.pos;
    return `${p?.file ?? ''}\u0000${String(p?.line ?? 0).padStart(8, '0')}\u0000${d.code}\u0000${d.message}`;
  };
  return [...diags].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
