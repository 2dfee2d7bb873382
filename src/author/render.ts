/** Objects -> one multi-document YAML text, each object optionally preceded by `#` comment lines. */
import { stringify } from 'yaml';
import type { KubeObject } from './egress.js';

export interface Authored {
  readonly object: KubeObject;
  /** Lines written as `# ...` above the object (the evidence for it). */
  readonly comment?: readonly string[];
}

export function renderYaml(items: readonly Authored[], header: readonly string[] = []): string {
  const docs = items.map((i) => {
    const comment = (i.comment ?? []).map((l) => `# ${l.replace(/\n/g, ' ')}\n`).join('');
    return comment + stringify(i.object, { lineWidth: 0 });
  });
  const head = header.map((l) => `# ${l}\n`).join('');
  return head + docs.join('---\n');
}
