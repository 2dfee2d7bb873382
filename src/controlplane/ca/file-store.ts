/**
 * `--ca-dir DIR`: the CA material in a directory, in Istio's `cacerts` layout. On first start with
 * an empty directory a self-signed root is generated and written there (the key 0600), so a restart
 * signs with the same root. An operator plugs in an intermediate by writing the four files; the
 * directory is watched (and re-read every few seconds, for mounts whose changes inotify misses), and
 * a complete, valid new set is taken at once; an incomplete or invalid one is logged and skipped.
 */
import { existsSync, mkdirSync, readFileSync, statSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { CA_FILES, caMaterialFrom, generateSelfSignedCaFiles, type CaFiles, type CaMaterial, type CaStore } from './material.js';

export class CaDirectory implements CaStore {
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private lastFingerprint: string | undefined;
  private lastProblem: string | undefined;

  constructor(
    private readonly dir: string,
    private readonly trustDomain: string,
    private readonly log: (line: string) => void,
    private readonly pollMs = 5000,
  ) {}

  async load(): Promise<CaMaterial> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const cert = join(this.dir, 'ca-cert.pem');
    const key = join(this.dir, 'ca-key.pem');
    if (!existsSync(cert) && !existsSync(key)) {
      const files = await generateSelfSignedCaFiles(this.trustDomain);
      // 'wx': another control plane sharing the directory may have written it meanwhile; then use theirs.
      try {
        writeFileSync(key, files['ca-key.pem'], { mode: 0o600, flag: 'wx' });
        writeFileSync(cert, files['ca-cert.pem'], { mode: 0o644, flag: 'wx' });
        writeFileSync(join(this.dir, 'root-cert.pem'), files['ca-cert.pem'], { mode: 0o644, flag: 'wx' });
        this.log(`CA: generated a self-signed root in ${this.dir} (ca-key.pem is the only copy of its key: keep it, and back it up)`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    const mode = statSync(key).mode & 0o077;
    if (mode !== 0) this.log(`CA: warning: ${key} is readable by group or others (mode ${(statSync(key).mode & 0o777).toString(8)}); chmod 600 it`);
    const m = caMaterialFrom(this.read(), this.dir);
    this.lastFingerprint = m.fingerprint;
    return m;
  }

  watch(onChange: (m: CaMaterial) => void): void {
    const check = (): void => {
      let m: CaMaterial;
      try {
        m = caMaterialFrom(this.read(), this.dir);
      } catch (err) {
        const problem = err instanceof Error ? err.message : String(err);
        if (problem !== this.lastProblem) this.log(`CA: the files in ${this.dir} changed but are not usable yet, still signing with the previous CA: ${problem}`);
        this.lastProblem = problem;
        return;
      }
      this.lastProblem = undefined;
      if (m.fingerprint === this.lastFingerprint) return;
      this.lastFingerprint = m.fingerprint;
      onChange(m);
    };
    try {
      this.watcher = watch(this.dir, () => {
        if (this.debounce) clearTimeout(this.debounce);
        // The four files are written one after another: wait for the burst to end.
        this.debounce = setTimeout(check, 300);
      });
      this.watcher.on('error', () => undefined);
    } catch {
      // No inotify here: the poll alone notices changes.
    }
    this.poll = setInterval(check, this.pollMs);
    this.poll.unref();
  }

  close(): void {
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
    if (this.debounce) clearTimeout(this.debounce);
  }

  private read(): CaFiles {
    const files: CaFiles = {};
    for (const name of CA_FILES) {
      const p = join(this.dir, name);
      if (existsSync(p)) files[name] = readFileSync(p, 'utf8');
    }
    return files;
  }
}
