/**
 * The Dockerfile builds with scripts/build-image-steps.sh, the script .ci/run also runs, and copies
 * the files that script stages: so CI (which has no container runtime) builds what the image builds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/pipeline.js';

const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

test('Dockerfile build steps are the script CI runs; runtime stage: the bundle, uid 1337, tollgate entrypoint, no dev dependencies', () => {
  const dockerfile = read('Dockerfile');
  const stages = dockerfile.split(/^FROM /m).slice(1);
  assert.equal(stages.length, 2, 'a build stage and a runtime stage');
  const [build = '', runtime = ''] = stages;
  const buildRuns = [...build.matchAll(/^RUN (.+)$/gm)].map((m) => m[1]);
  assert.deepEqual(buildRuns, ['scripts/build-image-steps.sh build /src'], 'the build stage runs only the shared script');
  const ci = read('.ci/run');
  assert.match(ci, /^scripts\/build-image-steps\.sh stage \/tmp\/tollgate-image-build /m, '.ci/run runs the same script');
  const script = read('scripts/build-image-steps.sh');
  const staged = /^SOURCES="([^"]+)"$/m.exec(script)?.[1]?.split(' ').sort();
  const copied = [...build.matchAll(/^COPY (.+) \S+$/gm)].flatMap((m) => (m[1] ?? '').split(' ')).sort();
  assert.deepEqual(copied, staged, 'the Dockerfile copies exactly what CI stages');
  assert.match(script, /^npm ci /m);
  assert.match(script, /^node scripts\/bundle\.mjs\nnpm prune --omit=dev /m, 'bundled before the dev dependencies (esbuild) are pruned');
  assert.match(runtime, /^COPY --from=build \/src\/dist\/bundle \.\/dist\/bundle$/m);
  assert.match(runtime, /^RUN ln -s \/opt\/tollgate\/dist\/bundle\/bin\.js \/usr\/local\/bin\/tollgate$/m, 'the image runs the bundle');
  assert.match(runtime, /^USER 1337:1337$/m);
  assert.match(runtime, /^ENTRYPOINT \["tollgate"\]$/m);
  assert.match(runtime, /^STOPSIGNAL SIGTERM$/m);
  assert.doesNotMatch(runtime, /COPY --from=build \/src\/(src|test|tsconfig)/, 'no sources or tests in the runtime image');
});
