// Loaded into the measured process with `node --import`: V8's sampling heap profiler over an
// in-process inspector session, switched by SIGUSR2 (first: start, second: stop and write the
// profile to $TOLLGATE_ALLOC_OUT). Objects the young and the old generation collected are counted
// too, so the profile is what was allocated, not what survived.
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';

const out = process.env.TOLLGATE_ALLOC_OUT;
const session = new Session();
session.connect();
let sampling = false;
process.on('SIGUSR2', () => {
  if (!sampling) {
    sampling = true;
    session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    return;
  }
  sampling = false;
  session.post('HeapProfiler.stopSampling', (err, r) => {
    writeFileSync(out, err ? JSON.stringify({ error: String(err) }) : JSON.stringify(r.profile));
  });
});
