package main

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// #13 item 17: a busy port gave libp2p's fx errors, naming no port. Now
// the demo checks its six ports first and names the busy one and how to
// pick others, creating nothing.
func TestDemoBusyPort(t *testing.T) {
	for _, offset := range []int{0, 2, 101} {
		t.Run("P+"+strconv.Itoa(offset), func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			base, ln := busyBase(t, offset)
			defer ln.Close()
			busy := base + offset
			r := staydown("demo", "--base-port", strconv.Itoa(base))
			wantFailure(t, r, "staydown: demo: port "+strconv.Itoa(busy)+" on 127.0.0.1 is in use: pick another first port P with `make demo BASE_PORT=P` or `staydown demo --base-port P`")
			if strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr is not one line: %q", r.stderr)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("the demo left %v in TMPDIR", left)
			}
		})
	}
}

// busyBase listens on a loopback port and returns a base port P with that
// port at P+offset, P in the demo's range.
func busyBase(t *testing.T, offset int) (int, net.Listener) {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port - offset
		if p >= 1 && p <= 65535-102 {
			return p, ln
		}
		ln.Close()
	}
	t.Fatal("no port found")
	return 0, nil
}
