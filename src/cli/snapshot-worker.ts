/**
 * Child-process entry of snapshot-loader.ts: one request in, the plain snapshot (or the config's
 * errors) out, then exit. Everything this loads (YAML parsers, decoders, model, generators) dies
 * with the process.
 */
import { formatDiagnostic } from '../config/diagnostics.js';
import { errorMessage } from '../shared/errors.js';
import { loadSnapshot } from './run-config.js';
import type { SnapshotRequest, WorkerMessage } from './snapshot-loader.js';

function answer(request: SnapshotRequest): WorkerMessage {
  try {
    const notes: string[] = [];
    const load = loadSnapshot(request.paths, request.identity, request.options, (s) => notes.push(s));
    return {
      ok: true,
      reply: {
        snapshot: load.snapshot,
        proxy: load.proxy,
        errors: load.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic),
        notices: load.diagnostics.filter((d) => d.severity !== 'error').map(formatDiagnostic),
        notes,
        resources: load.resources,
      },
    };
  } catch (e) {
    return { ok: false, error: errorMessage(e) };
  }
}

process.once('message', (request) => {
  // Disconnecting after the send lets the process end once the reply is flushed.
  process.send?.(answer(request as SnapshotRequest), () => process.disconnect?.());
});
