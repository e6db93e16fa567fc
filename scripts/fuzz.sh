#!/usr/bin/env bash
# Runs every fuzz target of the module for $FUZZTIME each (default 10s).
# Targets are discovered with `go test -list`, so a new Fuzz* function is
# run without editing this file.
#
# $FUZZJOBS targets run at once (default: one more than the number of
# CPUs), each with one fuzzing worker, so that CI's run of some sixty
# targets takes a third of the wall time on two cores (the extra job fills
# the time each spends building and gathering its corpus's coverage);
# each target still fuzzes for $FUZZTIME.
#
# Go's fuzz coordinator can fail on a loaded machine with "context deadline
# exceeded" and no failing input (golang/go#75804). Only that failure is
# retried, once; any failure that wrote an input fails the run.
set -euo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
FUZZJOBS=${FUZZJOBS:-$(($(nproc 2>/dev/null || echo 2) + 1))}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# fuzz_one PKG TARGET LOG: runs one target (retrying the coordinator's
# deadline once); its output goes to LOG, its status is the target's.
fuzz_one() {
  local pkg=$1 target=$2 log=$3 attempt
  for attempt in 1 2; do
    echo "fuzz: $pkg $target ($FUZZTIME)" >>"$log"
    if $GO test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" -parallel=1 "$pkg" >"$log.run" 2>&1; then
      tail -n 2 "$log.run" >>"$log"
      return 0
    fi
    cat "$log.run" >>"$log"
    if [ "$attempt" = 1 ] && grep -q 'context deadline exceeded' "$log.run" && ! grep -q 'Failing input written' "$log.run"; then
      echo "fuzz: $target hit the fuzz coordinator's deadline without a failing input (golang/go#75804); retrying once" >>"$log"
      continue
    fi
    return 1
  done
}

# The targets, in order; each job's log is printed when it ends. They are
# found by reading the test files, not with `go test -list`, which builds
# every package's test binary first (minutes on a cold cache in CI). A
# fuzz target is a top-level `func FuzzName(f *testing.F)`.
targets=()
while read -r pkg dir; do
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*(f \*testing\.F)' "$dir"/*_test.go 2>/dev/null |
    sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/' | sort); do
    targets+=("$pkg $target")
  done
done < <($GO list -f '{{.ImportPath}} {{.Dir}}' ./...)
if [ "${#targets[@]}" = 0 ]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi
declare -A running=() # pid -> log
failed=0
finish() { # waits for one job, prints its log, notes a failure
  local pid
  if wait -n -p pid; then :; else failed=1; fi
  cat "${running[$pid]}"
  unset "running[$pid]"
}
i=0
for t in "${targets[@]}"; do
  while [ "${#running[@]}" -ge "$FUZZJOBS" ]; do finish; done
  [ "$failed" = 0 ] || break
  i=$((i + 1))
  log="$dir/$i.log"
  : >"$log"
  fuzz_one ${t} "$log" &
  running[$!]=$log
done
while [ "${#running[@]}" -gt 0 ]; do finish; done
if [ "$failed" != 0 ]; then
  echo "fuzz: a target failed (its output is above)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran for $FUZZTIME each, $FUZZJOBS at a time"
