/**
 * A control plane serving a watched config directory over authenticated TLS, on a free loopback
 * port: what the tests of hot reload through the control plane start before their proxy.
 */
import { FileConfigSource } from '../../src/controlplane/config-source.js';
import { ControlPlane } from '../../src/controlplane/server.js';
import { makeControlPlaneAuth, type ControlPlaneAuth } from './control-plane-auth.js';

export interface WatchedControlPlane {
  readonly port: number;
  readonly controlPlane: ControlPlane;
  readonly auth: ControlPlaneAuth;
  /** Stops watching, closes the control plane and removes its credentials. */
  close(): Promise<void>;
}

export async function startWatchedControlPlane(dir: string, namespaces: readonly string[] = ['edge']): Promise<WatchedControlPlane> {
  const source = new FileConfigSource({ paths: [dir], debounceMs: 50 });
  source.reload();
  const auth = await makeControlPlaneAuth(namespaces);
  const cp = new ControlPlane({ source, ...auth.server });
  const { port } = await cp.listen('127.0.0.1', 0);
  source.watch();
  return {
    port,
    controlPlane: cp,
    auth,
    async close() {
      source.close();
      await cp.close();
      auth.cleanup();
    },
  };
}
