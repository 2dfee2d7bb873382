/**
 * The serving process's heap settings, observed in a child process (they are process-wide V8
 * flags): the young generation does not grow before the first snapshot apply, grows again after
 * it, and the collection after an apply runs and compacts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

const probe = `
import { getHeapSpaceStatistics } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { collectAfterApply, tuneHeapForServing } from ${JSON.stringify(new URL('./serving-heap.js', import.meta.url).href)};
const young = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
// Allocation with a high survival rate: what makes V8 grow the young generation.
const churn = () => { let keep = []; for (let i = 0; i < 1e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 200000) keep = []; } };
tuneHeapForServing();
churn();
const held = young();
// Old-space pages left mostly empty (what an apply leaves behind): survivors of two collections,
// then seven in eight of them dropped.
const gcNow = runInNewContext('gc');
globalThis.kept = Array.from({ length: 600000 }, (_, i) => ({ i, s: 'x' + i }));
gcNow();
gcNow();
for (let i = 0; i < globalThis.kept.length; i++) if (i % 8 !== 0) globalThis.kept[i] = null;
const before = process.memoryUsage().heapUsed;
globalThis.garbage = Array.from({ length: 300000 }, (_, i) => ({ i }));
globalThis.garbage = undefined;
collectAfterApply();
await new Promise((r) => setTimeout(r, 600));
const collected = before + 4e6 > process.memoryUsage().heapUsed;
const old = getHeapSpaceStatistics().find((s) => s.space_name === 'old_space');
const oldFree = old.physical_space_size - old.space_used_size;
churn();
console.log(JSON.stringify({ held, grown: young(), collected, oldFree }));
`;

test('run holds the young generation until the first apply, collects and compacts after it, then lets it grow', () => {
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8', timeout: 60_000 }));
  // V8's initial young generation: two 1 MB semi-spaces (the default grows them to 16 MB each).
  assert.ok(out.held <= 2 * 1024 * 1024, `no growth before the first apply (${out.held} bytes)`);
  assert.ok(out.collected, 'the collection after the apply freed the garbage');
  // Without compaction the dropped objects leave about 2 MB of free space in resident pages.
  assert.ok(out.oldFree < 1024 * 1024, `the collection compacted old space (${out.oldFree} bytes free in its pages)`);
  assert.ok(out.grown > out.held, `V8's growth is back after the first apply (${out.held} -> ${out.grown})`);
});
