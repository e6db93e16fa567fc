package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
)

func (c *cli) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status --dir D",
		Short: "Describe the running node: peers, logs, heads",
		Long: `Describe the running node: its identity, roster, peers, logs and heads.

The members table lists every other member of the roster in force: whether
its node is connected and in the entries topic, when a connection to it
last worked, and, when it refuses this node's connections, why as far as
this node can tell (it closed the connection right after the handshake:
its roster does not name this node's peer ID, or it banned this node; or
its sync hello named another federation or genesis). A member that
refuses is tried again after a backoff that doubles to 5 minutes.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			var st api.Status
			if err := cl.call(cmd.Context(), http.MethodGet, "/v1/status", nil, &st); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(st)
			}
			return printStatus(c, st)
		},
	}
}

func printStatus(c *cli, st api.Status) error {
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	flagged := "none"
	if len(st.Flagged) > 0 {
		flagged = strings.Join(st.Flagged, ", ")
	}
	listen := "none (dials out only)"
	if len(st.Listen) > 0 {
		listen = strings.Join(st.Listen, " ")
	}
	fmt.Fprintf(w, "member\t%s (%s) in federation %s\n", st.Name, st.Role, st.Federation)
	fmt.Fprintf(w, "author key\t%s\n", st.Author)
	fmt.Fprintf(w, "peer id\t%s\n", st.ID)
	fmt.Fprintf(w, "listen\t%s\n", listen)
	fmt.Fprintf(w, "genesis\t%s\n", st.Genesis)
	roster := fmt.Sprintf("version %d", st.RosterVersion)
	if !st.Member {
		roster += "; this node is not a member yet: it waits for its admission"
	}
	switch st.Proposals {
	case 0:
	case 1:
		roster += "; 1 proposal waits for votes (staydown member proposals)"
	default:
		roster += fmt.Sprintf("; %d proposals wait for votes (staydown member proposals)", st.Proposals)
	}
	fmt.Fprintf(w, "roster\t%s\n", roster)
	fmt.Fprintf(w, "peers\t%d connected, %d on the topic\n", st.Peers, st.TopicPeers)
	printMemberPeers(w, st.Members)
	fmt.Fprintf(w, "entries\t%d\n", st.Entries)
	if st.StoreWritable {
		fmt.Fprintf(w, "store\twritable\n")
	} else {
		fmt.Fprintf(w, "store\tCANNOT WRITE: no space (disk full, quota or file-size limit); API writes answer 507 until space is freed\n")
	}
	switch {
	case st.Behind == 0:
		fmt.Fprintf(w, "sync\tcaught up\n")
	case st.CatchupRate > 0:
		eta := time.Duration(st.CatchupETASeconds * float64(time.Second)).Round(time.Second)
		fmt.Fprintf(w, "sync\tcatching up: %d entries behind, %.0f entries/s, about %v to go\n", st.Behind, st.CatchupRate, eta)
	default:
		fmt.Fprintf(w, "sync\t%d entries behind\n", st.Behind)
	}
	if r := st.Restored; r != nil {
		line := fmt.Sprintf("%s from %s (%d needed), own head then seq %d", r.At, orNone(r.From), r.Needed, r.OwnSeq)
		if r.Damaged != "" {
			line += "; the damaged file is " + r.Damaged
		}
		fmt.Fprintf(w, "restored\t%s\n", line)
	}
	if st.OwnHeadConfirmed {
		fmt.Fprintf(w, "own head\tconfirmed\n")
	} else {
		fmt.Fprintf(w, "own head\tNOT confirmed: publishing refused until enough members' nodes have served this node's own log\n")
	}
	if c := st.Clash; c != nil {
		fmt.Fprintf(w, "clash\t%s\n", clashLine(c))
	}
	fmt.Fprintf(w, "heads digest\t%s\n", st.HeadsDigest)
	fmt.Fprintf(w, "flagged\t%s\n", flagged)
	printByName(w, "peer scores", st.PeerScores, "%.1f")
	printByName(w, "heads", st.Heads, "%d")
	return w.Flush()
}

// clashLine is the status line of a clash of identity (SPEC 13.1).
func clashLine(c *api.Clash) string {
	var what string
	switch c.How {
	case "liveness":
		what = fmt.Sprintf("member %s's node saw it connect from %s (process %s started %s, listening on %s)", c.Member, c.Remote, c.OtherInstance, c.OtherStarted, orNone(c.OtherAddrs))
	default:
		what = c.Detail
	}
	times := "once"
	if c.Count > 1 {
		times = fmt.Sprintf("%d times, first %s", c.Count, c.FirstAt)
	}
	return fmt.Sprintf("ANOTHER PROCESS RUNS THIS NODE'S IDENTITY: %s; last %s, %s. Stop it (a restored backup), or give it an identity of its own with staydown init (a cloned machine)", what, c.LastAt, times)
}

// printMemberPeers writes the table of the other members' nodes: connected,
// on the topic, last seen, and why one refuses this node.
func printMemberPeers(w io.Writer, members []api.Peer) {
	if len(members) == 0 {
		fmt.Fprintf(w, "members\tnone but this node in the roster\n")
		return
	}
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	fmt.Fprintf(w, "members\tNAME\tCONNECTED\tTOPIC\tLAST SEEN\tREFUSING\n")
	for _, m := range members {
		seen := m.LastSeen
		if seen == "" {
			seen = "never"
		}
		refusing := m.Refusing
		if refusing == "" {
			refusing = "-"
		}
		fmt.Fprintf(w, "\t%s\t%s\t%s\t%s\t%s\n", m.Name, yes(m.Connected), yes(m.OnTopic), seen, refusing)
	}
}

// printByName writes one line per member of m, sorted by name, the value
// in format, label on the first line only.
func printByName[V any](w io.Writer, label string, m map[string]V, format string) {
	for _, n := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(w, "%s\t%s\t"+format+"\n", label, n, m[n])
		label = ""
	}
}

// orNone is names joined, or "none".
func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
