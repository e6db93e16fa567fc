package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/config"
	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/protocol"
)

func (c *cli) memberCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "The federation's membership: list it, propose and approve changes",
		Long: `The federation's roster is not a file every node loads alike: it is
state derived from signed entries in the members' logs (SPEC.md section 12).
A federation starts from its genesis; after that, a voting member proposes
an amendment (admit, remove, role, revoke, rule), the other voting members
approve it, and it passes with more than the rule's share of the voters.

Each member votes once per roster version: its amendment is its vote, and
approving a second amendment of the same version is a conflicting vote that
every node keeps as evidence against it. The commands below refuse to cast
such a vote.`,
		Args: args("", 0, 0),
	}
	cmd.AddCommand(c.memberListCommand(), c.memberProposalsCommand(), c.memberProposeCommand(), c.memberApproveCommand(), c.memberRotateKeyCommand(), c.memberNewKeyCommand(), c.memberAnnounceCommand())
	return cmd
}

func (c *cli) memberListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list --dir D",
		Short: "The roster in force, its voting rule, removed members, conflicts and history",
		Long: `The roster version in force: its voting rule, its members (role, whether
it votes, its author key and every earlier key with where it ends, its
peer ID and addresses, the version that admitted it), the members removed,
the conflicting votes seen, and every version since the genesis with the
amendment that made it and who approved it.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			var v api.MembersView
			if err := cl.call(cmd.Context(), http.MethodGet, "/v1/members", nil, &v); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(v)
			}
			return printMembers(c.stdout, v)
		},
	}
}

func (c *cli) memberProposalsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "proposals --dir D",
		Short: "The amendments that wait for votes",
		Long: `The amendments of the roster version in force that wait for votes: what
each changes, who proposed it, its votes so far and the votes it needs,
the voting members that have not voted, and the command that approves it.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			var l api.ProposalList
			if err := cl.call(cmd.Context(), http.MethodGet, "/v1/proposals", nil, &l); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(l)
			}
			if len(l.Proposals) == 0 {
				_, err := fmt.Fprintf(c.stdout, "no amendment of roster version %d waits for votes\n", l.Version)
				return err
			}
			for i, p := range l.Proposals {
				if i > 0 {
					fmt.Fprintln(c.stdout)
				}
				if err := printProposal(c.stdout, "proposal", p); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func (c *cli) memberProposeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "propose",
		Short: "Propose an amendment of the roster: admit, remove, role, revoke, rule",
		Long: `Sign and publish an amendment of the roster version in force: this node's
vote for it. Prints the proposal's id, what it changes, its votes so far
and who has not voted, and the command the other voting members run to
approve it. The node refuses, before it signs anything, when it does not
vote at this version, when the amendment cannot apply, or when it has
voted at this version already.`,
		Args: args("", 0, 0),
	}
	var block string
	admit := &cobra.Command{
		Use:   "admit --dir D --block FILE",
		Short: "Admit a new member: FILE is the [[member]] block its `staydown init` printed",
		Args:  args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if block == "" {
				return needFlag("block", "the file holding the [[member]] block `staydown init` printed for the node to admit (- for standard input)")
			}
			b, err := readBlock(block)
			if err != nil {
				return err
			}
			return c.propose(cmd.Context(), api.ProposeRequest{Admit: b})
		},
	}
	admit.Flags().StringVar(&block, "block", "", "the new member's [[member]] block, as `staydown init` printed it (- for standard input)")

	var afterSeq string
	remove := &cobra.Command{
		Use:   "remove --dir D NAME [--after-seq N]",
		Short: "Remove member NAME; its entries after --after-seq no longer count",
		Long: `Remove member NAME from the roster. Its current key ends after --after-seq
(default: the seq of the newest entry of its log this node holds, so that
what it signs after the proposal does not count).`,
		Args: args("NAME", 1, 1),
		RunE: func(cmd *cobra.Command, names []string) error {
			if err := checkMemberArg(names[0]); err != nil {
				return err
			}
			seq, err := seqFlag("after-seq", afterSeq)
			if err != nil {
				return err
			}
			return c.propose(cmd.Context(), api.ProposeRequest{Remove: &api.Removal{Member: names[0], AfterSeq: seq}})
		},
	}
	remove.Flags().StringVar(&afterSeq, "after-seq", "", "the last seq of its log that counts (default: this node's head of it)")

	var roleAfter string
	role := &cobra.Command{
		Use:   "role --dir D NAME ROLE [--after-seq N]",
		Short: "Give member NAME the role ROLE (referral, platform, auditor, access)",
		Long: `Give member NAME the role ROLE for its entries after --after-seq (default:
the seq of the newest entry of its log this node holds).`,
		Args: args("NAME and ROLE", 2, 2),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkMemberArg(a[0]); err != nil {
				return err
			}
			if _, err := protocol.ParseRole(a[1]); err != nil {
				return usagef("ROLE %s is not a role: use referral, platform, auditor or access", short(a[1]))
			}
			seq, err := seqFlag("after-seq", roleAfter)
			if err != nil {
				return err
			}
			return c.propose(cmd.Context(), api.ProposeRequest{Role: &api.RoleChange{Member: a[0], Role: a[1], AfterSeq: seq}})
		},
	}
	role.Flags().StringVar(&roleAfter, "after-seq", "", "the last seq judged with the old role (default: this node's head of its log)")

	var revokeAfter, newKey, key string
	revoke := &cobra.Command{
		Use:   "revoke --dir D NAME --after-seq N [--new-key HEX] [--key HEX]",
		Short: "Revoke member NAME's key (stolen): its entries after --after-seq are void",
		Long: `Revoke member NAME's current key (or --key): its entries after --after-seq
(required: the seq of the last entry the member itself signed) no longer
count, whoever signed them. With --new-key, the member signs with that key
from then on (its node's author.key must hold it).`,
		Args: args("NAME", 1, 1),
		RunE: func(cmd *cobra.Command, names []string) error {
			if err := checkMemberArg(names[0]); err != nil {
				return err
			}
			if revokeAfter == "" {
				return needFlag("after-seq", "the seq of the last entry of the key that still counts (its later entries are the thief's)")
			}
			seq, err := seqFlag("after-seq", revokeAfter)
			if err != nil {
				return err
			}
			for _, f := range []struct{ name, value string }{{"key", key}, {"new-key", newKey}} {
				if err := checkKeyFlag(f.name, f.value); err != nil {
					return err
				}
			}
			return c.propose(cmd.Context(), api.ProposeRequest{Revoke: &api.Revocation{Member: names[0], Key: strings.ToLower(key), AfterSeq: seq, NewKey: strings.ToLower(newKey)}})
		},
	}
	revoke.Flags().StringVar(&revokeAfter, "after-seq", "", "the last seq of the key that still counts (required)")
	revoke.Flags().StringVar(&newKey, "new-key", "", "the member's new author key, 64 hex characters")
	revoke.Flags().StringVar(&key, "key", "", "the key to revoke, 64 hex characters (default: the member's current key)")

	var roles []string
	var threshold string
	rule := &cobra.Command{
		Use:   "rule --dir D --roles ROLE,... --threshold PERCENT",
		Short: "Change the voting rule: who votes, and the share of their votes that passes an amendment",
		Long: `Change the voting rule: the members of --roles (1 to 3 of referral,
platform, auditor) vote, and an amendment passes with more than
--threshold percent (50 to 99) of their votes.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(roles) == 0 {
				return needFlag("roles", "the roles that vote, e.g. referral,platform")
			}
			for _, r := range roles {
				if _, err := protocol.ParseRole(r); err != nil {
					return usagef("--roles: %s is not a role: use referral, platform, auditor or access", short(r))
				}
			}
			if threshold == "" {
				return needFlag("threshold", fmt.Sprintf("the share of the voters, in percent (%d to %d), that an amendment must exceed", protocol.MinThreshold, protocol.MaxThreshold))
			}
			n, err := strconv.ParseUint(threshold, 10, 32)
			if err != nil || n < protocol.MinThreshold || n > protocol.MaxThreshold {
				return usagef("--threshold %s: want a whole percentage from %d to %d", short(threshold), protocol.MinThreshold, protocol.MaxThreshold)
			}
			return c.propose(cmd.Context(), api.ProposeRequest{Rule: &api.VotingRule{Roles: roles, ThresholdPercent: uint32(n)}})
		},
	}
	rule.Flags().StringSliceVar(&roles, "roles", nil, "the roles that vote (repeat, or separate with commas)")
	rule.Flags().StringVar(&threshold, "threshold", "", "an amendment passes with more than this percentage of the voters (50 to 99)")

	cmd.AddCommand(admit, remove, role, revoke, rule)
	return cmd
}

func (c *cli) memberApproveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "approve --dir D PROPOSAL_ID",
		Short: "Approve a pending amendment (staydown member proposals lists them)",
		Long: `Sign and publish this node's approval of PROPOSAL_ID, an amendment of the
roster version in force. Prints its votes after it, and whether it passed.
The node refuses, before it signs anything, when it does not vote, when
no such amendment is pending, or when it has voted at this version already
(for this amendment, or for another one: that would be a conflicting vote,
evidence against this member).`,
		Args: args("PROPOSAL_ID", 1, 1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			id, err := protocol.ParseID(ids[0])
			if err != nil {
				return fmt.Errorf("PROPOSAL_ID %s: %w", short(ids[0]), err)
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			var p api.ProposalView
			if err := cl.call(cmd.Context(), http.MethodPost, "/v1/proposals/"+id.String()+"/approvals", nil, &p); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(p)
			}
			return printProposal(c.stdout, "approved", p)
		},
	}
}

// propose checks req as the node will, sends it and prints the proposal.
func (c *cli) propose(ctx context.Context, req api.ProposeRequest) error {
	if err := req.Check(); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	var p api.ProposalView
	if err := cl.call(ctx, http.MethodPost, "/v1/proposals", req, &p); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(p)
	}
	return printProposal(c.stdout, "proposed", p)
}

// maxBlockFile bounds the block file read: a block is a few hundred bytes.
const maxBlockFile = 64 << 10

// readBlock reads and checks the [[member]] block in file ("-": standard
// input).
func readBlock(file string) (*api.MemberBlock, error) {
	var r io.Reader = os.Stdin
	name := "standard input"
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("--block: %w", err)
		}
		defer f.Close()
		r, name = f, file
	}
	data, err := io.ReadAll(io.LimitReader(r, maxBlockFile+1))
	if err != nil {
		return nil, fmt.Errorf("--block: %s: %w", display(name), err)
	}
	if len(data) > maxBlockFile {
		return nil, fmt.Errorf("--block: %s: larger than %d bytes: not a [[member]] block", display(name), maxBlockFile)
	}
	m, err := config.ParseMemberBlock(name, data)
	if err != nil {
		return nil, err
	}
	addrs := m.Addrs
	if addrs == nil {
		addrs = []string{}
	}
	return &api.MemberBlock{Name: m.Name, Role: string(m.Role), AuthorKey: m.AuthorKey.String(), PeerID: m.PeerID, Addrs: addrs}, nil
}

func checkMemberArg(name string) error {
	if err := config.CheckName(name); err != nil {
		return usagef("NAME: %v", err)
	}
	return nil
}

// seqFlag parses the value of --name, a seq; "" is unset (nil).
func seqFlag(name, v string) (*uint64, error) {
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return nil, usagef("--%s %s: want a seq, a whole number from 0", name, short(v))
	}
	return &n, nil
}

// checkKeyFlag checks the value of --name, an author key in hex ("":
// unset).
func checkKeyFlag(name, v string) error {
	if v == "" {
		return nil
	}
	if len(v) != 64 {
		return usagef("--%s %s: want 64 hex characters (an ed25519 public key), got %d", name, short(v), len(v))
	}
	if _, err := hex.DecodeString(v); err != nil {
		return usagef("--%s %s: not hex", name, short(v))
	}
	return nil
}

// printProposal writes a proposal as a moderator reads it; verb heads
// its first line (proposed, approved, proposal).
func printProposal(out io.Writer, verb string, p api.ProposalView) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "%s\t%s\n", verb, p.ID)
	fmt.Fprintf(w, "change\t%s\n", printable(p.Change))
	fmt.Fprintf(w, "base\troster version %d, proposed by %s\n", p.Base, printable(p.Proposer))
	votes := fmt.Sprintf("%d of %d needed", len(p.Votes), p.Needed)
	if p.Voters > 0 {
		votes += fmt.Sprintf(" (%d voters)", p.Voters)
	}
	if len(p.Votes) > 0 {
		votes += ": " + names(p.Votes)
	}
	fmt.Fprintf(w, "votes\t%s\n", votes)
	switch {
	case p.Passed:
		fmt.Fprintf(w, "passed\troster version %d\n", p.Version)
	case p.Void != "":
		fmt.Fprintf(w, "void\t%s\n", printable(p.Void))
	default:
		if len(p.Missing) > 0 {
			fmt.Fprintf(w, "missing\t%s\n", names(p.Missing))
		}
		if len(p.Elsewhere) > 0 {
			fmt.Fprintf(w, "elsewhere\t%s (voted for another amendment of version %d)\n", names(p.Elsewhere), p.Base)
		}
		fmt.Fprintf(w, "to approve\tstaydown member approve --dir DIR %s\n", p.ID)
		fmt.Fprintf(w, "\t(each voting member, on its own node: DIR is that node's directory)\n")
	}
	return w.Flush()
}

// printMembers writes the membership as status does: aligned labels,
// then a table of the members and the history.
func printMembers(out io.Writer, v api.MembersView) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "federation\t%s\n", printable(v.Federation))
	fmt.Fprintf(w, "genesis\t%s\n", v.Genesis)
	fmt.Fprintf(w, "version\t%d\n", v.Version)
	fmt.Fprintf(w, "voting\tmore than %d%% of %s: %d voters, %d approvals pass an amendment\n", v.Rule.ThresholdPercent, names(v.Rule.Roles), v.Voters, v.Needed)
	switch v.Proposals {
	case 0:
		fmt.Fprintf(w, "proposals\tnone\n")
	case 1:
		fmt.Fprintf(w, "proposals\t1 waits for votes (staydown member proposals)\n")
	default:
		fmt.Fprintf(w, "proposals\t%d wait for votes (staydown member proposals)\n", v.Proposals)
	}
	for i, r := range v.Removed {
		label := ""
		if i == 0 {
			label = "removed"
		}
		fmt.Fprintf(w, "%s\t%s at version %d\n", label, printable(r.Name), r.Version)
	}
	for i, c := range v.Conflicts {
		label := ""
		if i == 0 {
			label = "conflicts"
		}
		fmt.Fprintf(w, "%s\t%s voted for two amendments of version %d: %s, then %s\n", label, printable(c.Member), c.Base, c.First, c.Second)
	}
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tROLE\tVOTES\tSINCE\tAUTHOR KEY\tPEER ID\tADDRS")
	var chains []string
	for _, m := range v.Members {
		votes := "no"
		if m.Votes {
			votes = "yes"
		}
		addrs := "-"
		if len(m.Addrs) > 0 {
			addrs = strings.Join(printables(m.Addrs), " ")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", printable(m.Name), printable(m.Role), votes, m.Since, m.AuthorKey, printable(m.PeerID), addrs)
		if len(m.Keys) > 1 || len(m.Keys) == 1 && m.Keys[0].End != nil {
			var keys []string
			for _, k := range m.Keys {
				switch {
				case k.End == nil:
					keys = append(keys, k.Key+" (open)")
				case *k.End == 0:
					keys = append(keys, fmt.Sprintf("%s (%s: holds nothing)", k.Key, printable(k.Why)))
				default:
					keys = append(keys, fmt.Sprintf("%s (%s after seq %d)", k.Key, printable(k.Why), *k.End))
				}
			}
			chains = append(chains, fmt.Sprintf("keys of %s: %s\n", printable(m.Name), strings.Join(keys, ", ")))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(chains) > 0 {
		fmt.Fprintln(out)
		for _, l := range chains {
			fmt.Fprint(out, l)
		}
	}

	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VERSION\tCHANGE\tPROPOSER\tVOTES\tPROPOSAL")
	for _, h := range v.History {
		if h.N == 0 {
			fmt.Fprintf(w, "0\t%s\t-\t-\t-\n", printable(h.Change))
			continue
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%d of %d (%d needed): %s\t%s\n", h.N, printable(h.Change), printable(h.Proposer), len(h.Votes), h.Voters, h.Needed, names(h.Votes), h.Proposal)
	}
	return w.Flush()
}

// names joins member names (or roles) for printing.
func names(ns []string) string {
	if len(ns) == 0 {
		return "none"
	}
	return strings.Join(printables(ns), ", ")
}
