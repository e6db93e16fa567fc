package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/internal/unboundtest"
)

// resolverBound bounds the wait for the resolver to load a changed zone:
// it polls every second (the zone's SOA refresh, ?refresh=1), so this is
// the gossip delivery bound plus a few refreshes.
const resolverBound = deliveryBound + 5*time.Second

// TestBlockingOrderResolver: a referral unit orders an access provider to
// block a site; the provider's node serves the order as a response-policy
// zone that a real resolver (Debian's unbound) loads by URL, and the
// resolver answers NXDOMAIN for the site and its subdomains within the
// refresh interval, while other names resolve; once the order is lifted,
// the site resolves normally again. The provider's replies (blocked, then
// unblocked) reach the referral unit, which sees that it unblocked in
// time. Bad orders are refused with exit 2 and publish nothing.
func TestBlockingOrderResolver(t *testing.T) {
	c := newCluster(t, "nru=referral", "isp=access")
	c.startAll()
	nru, isp := c.nodes["nru"], c.nodes["isp"]
	c.waitMesh(nru, isp)

	// The resolver: the "internet" is two local zones; the RPZ comes from
	// the provider's node, polled every second.
	resolver := startResolver(t, isp, map[string]string{
		"propaganda.example": "@ A 192.0.2.50\nwww A 192.0.2.51\n",
		"news.example":       "@ A 192.0.2.60\n",
	})
	answers := func(name, want string) func() bool {
		return func() bool { return lookupA(t, resolver, name) == want }
	}
	waitFor(t, 15*time.Second, "unbound answering www.propaganda.example", answers("www.propaganda.example", "192.0.2.51"))

	// Bad orders: exit 2, nothing published.
	for _, bad := range [][]string{
		{"block", "--dir", nru.dir, "--to", "isp", "--domain", "co.uk", "--basis", "LCEN art. 6-1"},
		{"block", "--dir", nru.dir, "--to", "isp", "--domain", "192.0.2.1", "--basis", "LCEN art. 6-1"},
		{"block", "--dir", nru.dir, "--to", "nru", "--domain", "propaganda.example", "--basis", "LCEN art. 6-1"},
		{"block", "--dir", isp.dir, "--to", "isp", "--domain", "propaganda.example", "--basis", "LCEN art. 6-1"},
	} {
		if _, errs, code := cli(t, bad...); code != 2 || errs == "" {
			t.Errorf("%v: exit %d, %q; want 2 and an error", bad, code, errs)
		}
	}
	if s := c.status(nru); s.Entries != 0 {
		t.Errorf("a refused order published something: %d entries", s.Entries)
	}

	start := time.Now()
	order := strings.TrimSpace(mustCLI(t, "block", "--dir", nru.dir, "--to", "all", "--domain", "propaganda.example", "--subdomains", "--basis", "LCEN art. 6-1"))
	waitFor(t, resolverBound, "www.propaganda.example blocked", answers("www.propaganda.example", "NXDOMAIN"))
	t.Logf("order to NXDOMAIN at the resolver: %v", time.Since(start).Round(time.Millisecond))
	for name, want := range map[string]string{"propaganda.example": "NXDOMAIN", "cdn.propaganda.example": "NXDOMAIN", "news.example": "192.0.2.60"} {
		if got := lookupA(t, resolver, name); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	out := filepath.Join(t.TempDir(), "blocked.txt")
	mustCLI(t, "blocklist", "--dir", isp.dir, "--format", "domains", "--out", out)
	if b, err := os.ReadFile(out); err != nil || string(b) != "*.propaganda.example\n" {
		t.Errorf("blocklist --format domains: %q, %v", b, err)
	}
	mustCLI(t, "reply", "--dir", isp.dir, order, "--status", "blocked")
	if _, errs, code := cli(t, "reply", "--dir", isp.dir, order, "--status", "unblocked"); code != 2 || !strings.Contains(errs, "still in force") {
		t.Errorf("unblocked while in force: exit %d, %q", code, errs)
	}
	waitNotice(t, nru, order, "actioned")

	mustCLI(t, "block", "lift", "--dir", nru.dir, order)
	waitFor(t, resolverBound, "www.propaganda.example resolving again", answers("www.propaganda.example", "192.0.2.51"))
	waitFor(t, deliveryBound, "the lift at the provider", func() bool {
		_, _, code := cli(t, "reply", "--dir", isp.dir, order, "--status", "unblocked")
		return code == 0
	})
	waitFor(t, deliveryBound, "nru sees the provider unblocked in time", func() bool {
		v := findNotice(noticesOf(t, nru, "--box", "all"), order)
		return v != nil && v.Blocking != nil && !v.Blocking.InForce && v.Blocking.UnblockedWithin != nil && *v.Blocking.UnblockedWithin
	})
	// The audit recomputes the order from the logs alone.
	var audit struct {
		State struct {
			Orders []struct {
				ID, To, State   string
				Domains         []string
				InForce         bool `json:"in_force"`
				Lift            string
				WithinDeadline  bool `json:"within_deadline"`
				UnblockedWithin bool `json:"unblocked_within_deadline"`
			} `json:"orders"`
		} `json:"state"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "audit", "--dir", nru.dir, "--json")), &audit); err != nil {
		t.Fatal(err)
	}
	if o := audit.State.Orders; len(o) != 1 || o[0].ID != order || o[0].To != "isp" || o[0].State != "actioned" || o[0].InForce || o[0].Lift == "" ||
		!o[0].WithinDeadline || !o[0].UnblockedWithin || len(o[0].Domains) != 1 || o[0].Domains[0] != "*.propaganda.example" {
		t.Errorf("the audit's orders: %+v", o)
	}
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(mustCLI(t, "notices", "--dir", isp.dir, "--json")), &list); err != nil || len(list) != 1 {
		t.Errorf("the provider's inbox: %d notices, %v", len(list), err)
	}
}

// startResolver starts Debian's unbound on a free loopback port, serving
// zones (name -> records after the SOA and NS) as the "internet", with the
// response-policy zone of isp's node, polled every second. It stops when
// the test ends, showing its log if the test failed.
func startResolver(t testing.TB, isp *node, zones map[string]string) netip.AddrPort {
	t.Helper()
	unbound := unboundtest.Require(t)
	cfg, err := config.Load(isp.dir)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port := freePort(t)
	var auth strings.Builder
	for name, body := range zones {
		p := filepath.Join(dir, name+".zone")
		if err := os.WriteFile(p, []byte("$TTL 1\n@ SOA localhost. hostmaster.localhost. 1 3600 600 604800 1\n@ NS localhost.\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&auth, "auth-zone:\n  name: %q\n  zonefile: %q\n  for-downstream: no\n  for-upstream: yes\n  fallback-enabled: no\n", name+".", p)
	}
	conf := filepath.Join(dir, "unbound.conf")
	err = os.WriteFile(conf, fmt.Appendf(nil, `server:
  interface: 127.0.0.1
  port: %d
  do-daemonize: no
  use-syslog: no
  logfile: ""
  username: ""
  chroot: ""
  directory: %q
  pidfile: %q
  do-ip6: no
  module-config: "respip iterator"
  access-control: 127.0.0.0/8 allow
  cache-max-ttl: 1
  cache-max-negative-ttl: 1
  auto-trust-anchor-file: ""
%srpz:
  name: "rpz.staydown."
  url: "http://%s/blocklist/rpz?refresh=1"
  rpz-log: yes
remote-control:
  control-enable: no
`, port, dir, filepath.Join(dir, "unbound.pid"), auth.String(), cfg.API), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "unbound.log"))
	if err != nil {
		t.Fatal(err)
	}
	ub := exec.Command(unbound, "-d", "-c", conf)
	ub.Stdout, ub.Stderr = logf, logf
	if err := ub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ub.Process.Kill()
		ub.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("unbound's log:\n%s", b)
		}
	})
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
}

// BenchmarkOrderToResolver: on a three-node loopback federation (a
// referral unit, an access provider, a platform), the time from a
// blocking order's publication (the CLI returns its id) to the provider's
// resolver answering NXDOMAIN for the site, polling the resolver every
// 10 ms; the RPZ's refresh is 1 s, which bounds it. Reports the median and
// p99 over b.N orders, each of a new site.
func BenchmarkOrderToResolver(b *testing.B) {
	c := newCluster(b, "nru=referral", "isp=access", "pf=platform")
	c.startAll()
	nru, isp, pf := c.nodes["nru"], c.nodes["isp"], c.nodes["pf"]
	c.waitMesh(nru, isp, pf)
	resolver := startResolver(b, isp, map[string]string{"bench.example": "* A 192.0.2.70\n"})
	waitFor(b, 15*time.Second, "unbound answering", func() bool { return lookupA(b, resolver, "s0.bench.example") == "192.0.2.70" })
	var took []time.Duration
	i := 0
	for b.Loop() {
		i++
		site := fmt.Sprintf("s%d.bench.example", i)
		mustCLI(b, "block", "--dir", nru.dir, "--to", "isp", "--domain", site, "--basis", "bench")
		start := time.Now()
		for lookupA(b, resolver, site) != "NXDOMAIN" {
			if time.Since(start) > resolverBound {
				b.Fatalf("%s not blocked after %v", site, resolverBound)
			}
			time.Sleep(10 * time.Millisecond) // the resolver's poll, not synchronisation: the loop waits on its answer
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "ms-median")
	b.ReportMetric(float64(took[min(len(took)-1, len(took)*99/100)].Milliseconds()), "ms-p99")
}

// lookupA asks the resolver for name's A record over UDP and returns the
// address, "NXDOMAIN", or the rcode's name.
func lookupA(t testing.TB, resolver netip.AddrPort, name string) string {
	t.Helper()
	q := dnsmessage.Message{Header: dnsmessage.Header{ID: 7, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name + "."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", resolver.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write(b); err != nil {
		return err.Error()
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		return err.Error() // not started yet, or a timeout: the caller waits
	}
	var m dnsmessage.Message
	if err := m.Unpack(buf[:n]); err != nil {
		t.Fatalf("%s: unpacking the answer: %v", name, err)
	}
	if m.RCode == dnsmessage.RCodeNameError {
		return "NXDOMAIN"
	}
	for _, a := range m.Answers {
		if r, ok := a.Body.(*dnsmessage.AResource); ok {
			return netip.AddrFrom4(r.A).String()
		}
	}
	return m.RCode.String()
}
