#!/usr/bin/env sh
# Rewrites deploy/<profile>.yaml from `tollgate manifest generate` with default settings.
# test/manifest/deploy.test.ts fails when deploy/ and this output differ.
set -eu
cd "$(dirname "$0")/.."
for profile in control-plane egress-gateway ingress-gateway egress-router sidecar-injection crds; do
  node dist/src/cli/bin.js manifest generate --profile "$profile" -o deploy
done
