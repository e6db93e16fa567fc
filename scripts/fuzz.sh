#!/usr/bin/env bash
# Runs every fuzz target of the module for $FUZZTIME each (default 10s).
# Targets are discovered with `go test -list`, so a new Fuzz* function is
# run without editing this file.
#
# Go's fuzz coordinator can fail on a loaded machine with "context deadline
# exceeded" and no failing input (golang/go#75804). Only that failure is
# retried, once; any failure that wrote an input fails the run.
set -euo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
count=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $($GO list ./...); do
  for target in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    for attempt in 1 2; do
      echo "fuzz: $pkg $target ($FUZZTIME)"
      if $GO test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg" >"$log" 2>&1; then
        tail -n 2 "$log"
        break
      fi
      cat "$log"
      if [ "$attempt" = 1 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
        echo "fuzz: $target hit the fuzz coordinator's deadline without a failing input (golang/go#75804); retrying once"
        continue
      fi
      exit 1
    done
    count=$((count + 1))
  done
done
echo "fuzz: $count targets ran for $FUZZTIME each"
