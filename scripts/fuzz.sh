#!/usr/bin/env bash
# Runs every fuzz target of the module for $FUZZTIME each (default 10s).
# Targets are discovered with `go test -list`, so a new Fuzz* function is
# run without editing this file.
set -euo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
count=0
for pkg in $($GO list ./...); do
  for target in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $target ($FUZZTIME)"
    $GO test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg"
    count=$((count + 1))
  done
done
echo "fuzz: $count targets ran for $FUZZTIME each"
