#!/usr/bin/env sh
# The container image's build steps, run by the Dockerfile's build stage AND by .ci/run (on a copy of
# the sources, since CI has no container runtime), so CI builds what the image builds:
#   scripts/build-image-steps.sh build DIR   npm ci, type-check and compile src/ without its unit tests
#                                            (tsconfig.build.json), bundle the CLI (dist/bundle, what the
#                                            image runs), prune to production dependencies, check the
#                                            pruned tree runs
#   scripts/build-image-steps.sh stage DIR   copy what the Dockerfile copies into DIR first (CI)
set -eu
step="${1:-}"
dir="${2:-}"
[ -n "$step" ] && [ -n "$dir" ] || { echo "usage: $0 build|stage DIR" >&2; exit 2; }

# The files the Dockerfile's build stage copies (keep in step with its COPY lines; a test checks).
SOURCES="package.json package-lock.json tsconfig.json tsconfig.build.json scripts src examples"

if [ "$step" = stage ]; then
  repo="$(cd "$(dirname "$0")/.." && pwd)"
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$repo" && tar cf - $SOURCES) | (cd "$dir" && tar xf -)
  step=build
fi
[ "$step" = build ] || { echo "$0: unknown step $step" >&2; exit 2; }

cd "$dir"
# --ignore-scripts: the package's own prepare step would compile the tests too, which are not copied.
npm ci --ignore-scripts --no-audit --no-fund
npx tsc -p tsconfig.build.json
node scripts/bundle.mjs
npm prune --omit=dev --no-audit --no-fund
# The pruned tree must run without dev dependencies: the CLI, and a manifest it generates.
node dist/bundle/bin.js --version
node dist/bundle/bin.js manifest generate --profile control-plane > /dev/null
node dist/bundle/bin.js analyze -f examples/default > /dev/null
