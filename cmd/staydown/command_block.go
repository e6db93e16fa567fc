package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/api"
	"github.com/staydown/staydown/node/blocklist"
	"github.com/staydown/staydown/protocol"
)

func (c *cli) blockCommand() *cobra.Command {
	var req api.OrderRequest
	cmd := &cobra.Command{
		Use:   "block --dir D --to NAME|all --domain DOMAIN... [--subdomains] --basis TEXT [--until TIME] [--start TIME] [--deadline D] [--category C]",
		Short: "Order access providers to block sites (referral units)",
		Long: `Send a blocking order to NAME, an access provider of the roster, or to
every access provider (--to all: one order each), and print each order's
entry id. --domain (repeatable) names a site by its domain (example.org, or
*.example.org for it and every name under it; --subdomains gives every
--domain its subdomains). --basis is the legal basis. The order binds from
--start (RFC 3339, default now) until --until (an RFC 3339 time or a
duration from the start, e.g. 720h; default until lifted with
'staydown block lift'). --deadline is the time the provider has to block,
and to unblock once the order ends (default 24h). Everything in an order is
public: who, whom, the domains, the basis, the times and every reply.

The provider's node serves the orders in force for it to its resolvers at
/blocklist/rpz (a response-policy zone), /blocklist/hosts and
/blocklist/domains; see 'staydown blocklist'.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case req.To == "":
				return needFlag("to", "an access provider's member name, or all")
			case len(req.Domains) == 0:
				return needFlag("domain", "the domain of a site, e.g. propaganda.example")
			case strings.TrimSpace(req.Basis) == "":
				return needFlag("basis", "the legal basis, e.g. \"LCEN art. 6-1\"")
			}
			if _, err := req.Order(); err != nil {
				return usagef("--domain: %v", err)
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			var out api.OrdersPublished
			if err := cl.call(cmd.Context(), http.MethodPost, "/v1/orders", req, &out); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(out)
			}
			for _, o := range out.Orders {
				if _, err := fmt.Fprintln(c.stdout, o.ID); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.To, "to", "", "the access provider (member name) or all (required)")
	f.StringArrayVar(&req.Domains, "domain", nil, "domain to block, *. first for its subdomains too (repeatable; required)")
	f.BoolVar(&req.Subdomains, "subdomains", false, "block every --domain's subdomains too")
	f.StringVar(&req.Basis, "basis", "", "legal basis (required, public)")
	f.StringVar(&req.Until, "until", "", "end: RFC 3339 time or duration from the start (default until lifted)")
	f.StringVar(&req.Start, "start", "", "start, RFC 3339 (default now)")
	f.StringVar(&req.Deadline, "deadline", "", "time to block and to unblock: duration or RFC 3339 time (default 24h)")
	f.StringVar(&req.Category, "category", "", "content label (default glorification-of-terrorist-acts)")
	cmd.AddCommand(c.blockLiftCommand())
	return cmd
}

func (c *cli) blockLiftCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "lift --dir D ORDER_ID",
		Short: "Lift a blocking order this node issued",
		Long: `Lift ORDER_ID, a blocking order this node issued: it ends now. Its access
provider then unblocks and replies unblocked; the report shows whether it
did so within the order's deadline. Prints the update's entry id.`,
		Args: args("ORDER_ID", 1, 1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			if _, err := protocol.ParseID(ids[0]); err != nil {
				return err
			}
			return c.publish(cmd.Context(), "/v1/orders/lift", api.OrderLiftRequest{Order: ids[0]})
		},
	}
}

func (c *cli) blocklistCommand() *cobra.Command {
	var format, out, landing string
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "blocklist --dir D --format rpz|hosts|domains --out FILE [--landing ADDRESS|HOST] [--every 30s]",
		Short: "Write the blocking orders in force for this node to a file (access providers)",
		Long: `Write the domains that the blocking orders in force for this node name (not
lifted, not ended, not answered not-executed) to FILE, in --format rpz (a
DNS response-policy zone for BIND, Unbound, Knot Resolver or PowerDNS),
hosts, or domains (one per line). FILE is replaced (atomically) only when
its content changes; the RPZ's SOA serial grows with every change. In the
RPZ a blocked name answers NXDOMAIN, or --landing's address (A or AAAA) or
host (CNAME), e.g. the provider's page explaining the block. With --every,
it fetches again at that interval until interrupted, writing on each
change. A resolver can instead fetch http://API/blocklist/rpz directly.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := blocklist.ParseFormat(format); err != nil {
				return usagef("--format: %v", err)
			}
			if out == "" {
				return needFlag("out", "the file to write")
			}
			if _, err := blocklist.ParseLanding(landing); err != nil {
				return usagef("--landing: %v", err)
			}
			if every < 0 || every > 0 && every < time.Second {
				return usagef("--every %s: want at least 1s", every)
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			path := "/blocklist/" + format
			if landing != "" {
				path += "?landing=" + url.QueryEscape(landing)
			}
			for {
				changed, err := cl.writeBlocklist(cmd.Context(), path, out)
				if err != nil {
					return err
				}
				if changed {
					fmt.Fprintf(c.stdout, "%s: written\n", out)
				}
				if every == 0 {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(every):
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "rpz", "rpz, hosts or domains")
	f.StringVar(&out, "out", "", "the file to write (required)")
	f.StringVar(&landing, "landing", "", "RPZ: answer blocked names with this address or host (default NXDOMAIN)")
	f.DurationVar(&every, "every", 0, "fetch again at this interval until interrupted (default once)")
	return cmd
}

// writeBlocklist fetches the blocklist at path and replaces file with it
// if it differs, reporting whether it did.
func (cl *client) writeBlocklist(ctx context.Context, path, file string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cl.base+path, nil)
	if err != nil {
		return false, err
	}
	res, err := cl.http.Do(req)
	if err != nil {
		return false, fmt.Errorf("the node at %s: %w", cl.addr, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxResponse))
	if err != nil {
		return false, err
	}
	if res.StatusCode != http.StatusOK {
		return false, fmt.Errorf("the node at %s: %s: %s", cl.addr, res.Status, strings.TrimSpace(string(body)))
	}
	if old, err := os.ReadFile(file); err == nil && bytes.Equal(old, body) {
		return false, nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(body); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	return true, os.Rename(tmp.Name(), file)
}
