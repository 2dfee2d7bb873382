/**
 * The CA material in Kubernetes, as istiod keeps it, in the control plane's namespace:
 * - `cacerts` (plugged in by the operator: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem)
 *   wins when it exists;
 * - else `istio-ca-secret` (type istio.io/ca-root, a self-signed root), created on first start.
 * Both are watched (by name): a new or changed `cacerts` is a rotation the CA takes at once.
 */
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { NamedObjectWatch } from './object-watch.js';
import { CA_FILES, caMaterialFrom, generateSelfSignedCaFiles, type CaFiles, type CaMaterial, type CaStore } from '../ca/material.js';

// Both are in CA_SECRET_NAMES (kinds.ts), which keeps them out of the config.
export const PLUGGED_IN_SECRET = 'cacerts';
export const SELF_SIGNED_SECRET = 'istio-ca-secret';

function codeOf(err: unknown): number | undefined {
  const c = (err as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
}

export class KubernetesCaSecrets implements CaStore {
  private readonly api: CoreV1Api;
  private readonly watches: NamedObjectWatch[] = [];
  private checking: Promise<void> = Promise.resolve();
  private lastFingerprint: string | undefined;
  private lastProblem: string | undefined;

  constructor(private readonly kc: KubeConfig, private readonly namespace: string, private readonly trustDomain: string, private readonly log: (line: string) => void) {
    this.api = kc.makeApiClient(CoreV1Api);
  }

  async load(): Promise<CaMaterial> {
    let m = await this.read();
    if (!m) {
      await this.createSelfSigned();
      m = await this.read();
      if (!m) throw new Error(`${this.namespace}/${SELF_SIGNED_SECRET} was created but cannot be read back`);
    }
    this.lastFingerprint = m.fingerprint;
    return m;
  }

  watch(onChange: (m: CaMaterial) => void): void {
    const check = async (): Promise<void> => {
      try {
        const m = await this.read();
        this.lastProblem = undefined;
        if (!m || m.fingerprint === this.lastFingerprint) return;
        this.lastFingerprint = m.fingerprint;
        onChange(m);
      } catch (err) {
        const problem = err instanceof Error ? err.message : String(err);
        if (problem !== this.lastProblem) this.log(`CA: cannot use the CA Secrets, still signing with the previous CA: ${problem}`);
        this.lastProblem = problem;
      }
    };
    // One read at a time: an older read finishing late must not undo a newer one.
    const changed = (): void => {
      this.checking = this.checking.then(check);
    };
    for (const name of [PLUGGED_IN_SECRET, SELF_SIGNED_SECRET]) {
      const w = new NamedObjectWatch(this.kc, { path: `/api/v1/namespaces/${this.namespace}/secrets`, name, onChange: changed, log: (l) => this.log(`CA: ${l}`) });
      this.watches.push(w);
      w.start();
    }
  }

  close(): void {
    for (const w of this.watches) w.close();
  }

  /** `cacerts` if present, else `istio-ca-secret`, else undefined. Invalid content throws. */
  private async read(): Promise<CaMaterial | undefined> {
    for (const name of [PLUGGED_IN_SECRET, SELF_SIGNED_SECRET]) {
      const s = await this.get(name);
      if (s) return caMaterialFrom(filesOf(s), `Secret ${this.namespace}/${name}`);
    }
    return undefined;
  }

  private async get(name: string): Promise<V1Secret | undefined> {
    try {
      return await this.api.readNamespacedSecret({ name, namespace: this.namespace });
    } catch (err) {
      if (codeOf(err) === 404) return undefined;
      throw err;
    }
  }

  private async createSelfSigned(): Promise<void> {
    const files = await generateSelfSignedCaFiles(this.trustDomain);
    const data: Record<string, string> = { 'ca-cert.pem': files['ca-cert.pem'], 'ca-key.pem': files['ca-key.pem'], 'cert-chain.pem': '', 'key.pem': '', 'root-cert.pem': '' };
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'istio.io/ca-root',
      metadata: { name: SELF_SIGNED_SECRET, namespace: this.namespace, labels: { 'app.kubernetes.io/managed-by': 'tollgate' } },
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    };
    try {
      await this.api.createNamespacedSecret({ namespace: this.namespace, body });
      this.log(`CA: created Secret ${this.namespace}/${SELF_SIGNED_SECRET} with a new self-signed root`);
    } catch (err) {
      // Another replica created it first: use theirs.
      if (codeOf(err) !== 409) throw err;
    }
  }
}

function filesOf(s: V1Secret): CaFiles {
  const files: CaFiles = {};
  for (const name of CA_FILES) {
    const v = s.data?.[name];
    if (v !== undefined) files[name] = Buffer.from(v, 'base64').toString('utf8');
  }
  return files;
}
