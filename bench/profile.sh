#!/usr/bin/env sh
# CPU profile of Tollgate under wrk load; prints the top 20 self-time functions.
# Same options as bench/profile.mjs (see its header), e.g. bench/profile.sh --face tcp --seconds 10
exec node "$(dirname "$0")/profile.mjs" "$@"
