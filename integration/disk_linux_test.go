package integration

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/staydown/staydown/config"
)

// setFileSizeLimit sets the running node's soft file-size limit
// (RLIMIT_FSIZE, as `ulimit -f` would) to n bytes, or back to its hard
// limit with n < 0; no root needed. Past it, the node's writes fail with
// EFBIG (Go programs ignore SIGXFSZ), as they would on a full disk with ENOSPC.
func setFileSizeLimit(t *testing.T, n *node, size int64) {
	t.Helper()
	var old unix.Rlimit
	pid := n.cmd.Process.Pid
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &old); err != nil {
		t.Fatal(err)
	}
	lim := unix.Rlimit{Cur: old.Max, Max: old.Max}
	if size >= 0 {
		lim.Cur = uint64(size)
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &lim, nil); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestDiskFull: a node whose store cannot grow (its file-size limit: a
// full disk without root) answers API writes 507 with a reason, says
// store_writable false in its status and metrics and logs it at a bounded
// rate, stays up, and once it has room again writes, says so, fetches
// what its peers published meanwhile, and after a restart holds every
// entry it acknowledged (#12 item 11: it answered 500 "internal error"
// and nothing said why).
func TestDiskFull(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "nru=referral", "pa=platform")
	nru, pa := c.nodes["nru"], c.nodes["pa"]
	c.startAll()
	c.waitMesh(nru, pa)
	api, paAPI := apiOf(t, nru), apiOf(t, pa)
	cfg, err := config.Load(nru.dir)
	if err != nil {
		t.Fatal(err)
	}
	if !api.mustStatus(t).StoreWritable {
		t.Fatal("a new node's store is not writable")
	}

	// The store may use the room its file has; growing it fails. The
	// log file must stay under the limit for the WARN line to be seen.
	setFileSizeLimit(t, nru, max(fileSize(t, cfg.StorePath), fileSize(t, nru.logPath())+1<<20))
	var acked []string
	for i := 0; ; i++ {
		if i == 20000 {
			t.Fatalf("%d additions stored under the file-size limit", i)
		}
		h := randomSHA256(t)
		if _, err := api.add(h); err != nil {
			if !strings.Contains(err.Error(), "507 Insufficient Storage") || !strings.Contains(err.Error(), "insufficient storage: the node's store cannot write") {
				t.Fatalf("addition %d past the limit: %v, want 507 with the reason", i, err)
			}
			break
		}
		acked = append(acked, h)
	}
	t.Logf("%d additions acknowledged before the store could not grow", len(acked))

	// No room at all now: whatever free pages the file has left, every
	// write fails, so that what follows does not depend on them.
	setFileSizeLimit(t, nru, 0)
	if _, err := api.add(randomSHA256(t)); err == nil || !strings.Contains(err.Error(), "507") {
		t.Fatalf("addition with no room: %v, want 507", err)
	}
	if st := api.mustStatus(t); st.StoreWritable {
		t.Fatal("status says store_writable after a write failed for lack of room")
	}
	if m := metricsOf(t, api.base); !strings.Contains(m, "\nstaydown_store_writable 0\n") {
		t.Fatalf("metrics do not say the store cannot write:\n%s", grepLines(m, "staydown_store"))
	}
	// Meanwhile pa publishes: nru cannot store what gossip brings.
	var fromPA []string
	for range 5 {
		h := randomSHA256(t)
		if _, err := paAPI.add(h); err != nil {
			t.Fatal(err)
		}
		fromPA = append(fromPA, h)
	}

	setFileSizeLimit(t, nru, -1)
	// The probe (or any write) finds the room.
	waitFor(t, 60*time.Second, "nru's store writable again", func() bool { return api.mustStatus(t).StoreWritable })
	h := randomSHA256(t)
	if _, err := api.add(h); err != nil {
		t.Fatalf("addition after room was freed: %v", err)
	}
	acked = append(acked, h)
	if m := metricsOf(t, api.base); !strings.Contains(m, "\nstaydown_store_writable 1\n") {
		t.Fatalf("metrics do not say the store writes again:\n%s", grepLines(m, "staydown_store"))
	}
	// What gossip brought while nru could not write comes by sync.
	waitFor(t, 60*time.Second, "pa's entries on nru", func() bool {
		got, err := api.attested(fromPA)
		if err != nil {
			t.Fatal(err)
		}
		for _, ids := range got {
			if len(ids) == 0 {
				return false
			}
		}
		return true
	})

	log := nru.log(t)
	if n := strings.Count(log, "store cannot write"); n < 1 || n > 3 {
		t.Errorf("%d lines say the store cannot write, want 1 to 3 (once a minute at most)", n)
	}
	if !strings.Contains(log, "store can write again") {
		t.Error("no line says the store can write again")
	}

	c.stop(nru)
	c.start(nru)
	got, err := api.attested(append(acked, fromPA...))
	if err != nil {
		t.Fatal(err)
	}
	for i, ids := range got {
		if len(ids) == 0 {
			t.Fatalf("after a restart, acknowledged addition %d of %d is missing", i, len(got))
		}
	}
}

func metricsOf(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
