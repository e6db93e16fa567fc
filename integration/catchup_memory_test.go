package integration

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/store"
)

// TestCatchUpMemory measures a fresh node process catching up on one log
// of STAYDOWN_ITEST_CATCHUP entries (random sha256 signals, seeded
// straight into the source's store) from one peer: the rate, and the
// fresh process's peak resident set, sampled every 50 ms, split into its
// anonymous part (Go heap, stacks) and its file-backed part (bbolt's
// memory map of the store, mostly). It asserts nothing about either: it
// is a measurement, skipped unless the variable is set.
//
//	STAYDOWN_ITEST_CATCHUP=1000000 go test -run TestCatchUpMemory -v -timeout 30m ./integration/
func TestCatchUpMemory(t *testing.T) {
	v := os.Getenv("STAYDOWN_ITEST_CATCHUP")
	if v == "" {
		t.Skip("set STAYDOWN_ITEST_CATCHUP to a number of entries to measure a catch-up")
	}
	count, err := strconv.Atoi(v)
	if err != nil || count < 1 {
		t.Fatalf("STAYDOWN_ITEST_CATCHUP=%q: want a positive number of entries", v)
	}
	c := newCluster(t, "nru=referral", "platform-new=platform")
	nru, fresh := c.nodes["nru"], c.nodes["platform-new"]
	cfg, err := config.Load(nru.dir)
	if err != nil {
		t.Fatal(err)
	}
	key, err := cfg.AuthorKey()
	if err != nil {
		t.Fatal(err)
	}
	seeding := time.Now()
	st, err := store.Open(cfg.StorePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeLog(key, "itest", "memory", count, st); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d entries in %v", count, time.Since(seeding).Round(time.Millisecond))
	c.start(nru)

	start := time.Now()
	c.start(fresh)
	pid := fresh.cmd.Process.Pid
	var peak procMemory
	for {
		m := readProcMemory(pid)
		peak = procMemory{max(peak.anon, m.anon), max(peak.file, m.file), max(peak.hwm, m.hwm)}
		if s, err := apiOf(t, fresh).status(); err == nil && s.Entries == uint64(count) {
			break
		}
		if time.Since(start) > 20*time.Minute {
			t.Fatal("no catch-up after 20 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	const mib = 1 << 10 // the fields are in kB
	t.Logf("fresh node caught up on %d entries in %v (%.0f entries/s, from its start; race detector %v)",
		count, took.Round(time.Millisecond), float64(count)/took.Seconds(), raceEnabled)
	t.Logf("fresh node peak RSS (VmHWM) %d MiB; sampled peaks: anonymous %d MiB, file-backed %d MiB",
		peak.hwm/mib, peak.anon/mib, peak.file/mib)
}

// procMemory is a process's resident set, in kB: anonymous (RssAnon),
// file-backed (RssFile) and the peak of the two together (VmHWM).
type procMemory struct{ anon, file, hwm uint64 }

func readProcMemory(pid int) procMemory {
	var m procMemory
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, value, _ := strings.Cut(s.Text(), ":")
		n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch name {
		case "RssAnon":
			m.anon = n
		case "RssFile":
			m.file = n
		case "VmHWM":
			m.hwm = n
		}
	}
	return m
}
