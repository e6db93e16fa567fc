package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/staydown/staydown/node/kind"
)

// TestRestoredNodeConfirmsItsOwnHead: a store restored from one peer of
// the two needed (--unconfirmed) starts with its own head unconfirmed:
// the node refuses to publish, and once the second peer is up and has
// served it, it confirms, records so, and continues its log at the next
// seq without any peer flagging it (#12 item 8).
func TestRestoredNodeConfirmsItsOwnHead(t *testing.T) {
	inSim(t, func(t *testing.T) {
		f := newSimFed(t, simDefaults(71), "nru=referral", "pfa=platform", "pfb=platform")
		nru, pfa := f.start("nru"), f.start("pfa")
		f.meshed(time.Minute)
		for i := range 3 {
			publishAddition(t, nru, []string{"graphic-violence"}, sha256Signal(uint64(i)))
		}
		f.waitFor(time.Minute, "pfa holds nru's log", func() bool { h, _ := pfa.store.Head(nru.me.AuthorKey); return h.Seq == 3 })
		f.stop("nru")

		opts := Options{NoAPI: true, Host: func(key crypto.PrivKey, g connmgr.ConnectionGater) (host.Host, error) { return f.host("nru", key, g) }}
		_, err := Restore(context.Background(), f.cfgs["nru"], f.trace.logger("nru"), opts, RestoreOptions{MinPeers: -1, Timeout: 5 * time.Second, Force: true})
		if !errors.Is(err, kind.ErrUnavailable) {
			t.Fatalf("restore from 1 of 2 peers: %v, want ErrUnavailable", err)
		}
		rep, err := Restore(context.Background(), f.cfgs["nru"], f.trace.logger("nru"), opts, RestoreOptions{MinPeers: -1, Timeout: 5 * time.Second, Unconfirmed: true, Force: true})
		if err != nil || rep.Confirmed || rep.OwnSeq != 3 || len(rep.From) != 1 || rep.Needed != 2 {
			t.Fatalf("restore --unconfirmed --force: %+v, %v", rep, err)
		}
		nru = f.start("nru")
		if _, err := nru.Publish(context.Background(), additionBody(t, "after the restore")); !errors.Is(err, kind.ErrUnavailable) {
			t.Fatalf("publish, own head unconfirmed: %v, want ErrUnavailable", err)
		}
		f.settle(5 * time.Second)
		if st, err := nru.Status(context.Background()); err != nil || st.OwnHeadConfirmed || st.Restored == nil || st.Restored.OwnSeq != 3 {
			t.Fatalf("status, own head unconfirmed: %+v, %v", st, err)
		}

		f.start("pfb")
		f.waitFor(time.Minute, "nru confirms its own head", func() bool { return !nru.ownUnconfirmed.Load() })
		if r, _, err := nru.store.Restored(); err != nil || !r.Confirmed || len(r.From) != 2 {
			t.Fatalf("restore record after confirmation: %+v, %v", r, err)
		}
		e, err := nru.Publish(context.Background(), additionBody(t, "after the restore"))
		if err != nil || e.Seq() != 4 {
			t.Fatalf("publish once confirmed: %v, %v; want seq 4", e, err)
		}
		f.converge(time.Minute)
		for name, n := range f.nodes {
			if fl, _ := n.store.Flagged(); len(fl) != 0 {
				t.Errorf("%s flags %v", name, fl)
			}
		}
	})
}
