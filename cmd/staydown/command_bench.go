package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/staydown/staydown/node/localfed"
)

// benchReport is `staydown bench --json`.
type benchReport struct {
	Nodes     int     `json:"nodes"`
	Entries   int     `json:"entries"`
	Delivered int     `json:"delivered"` // (entry, receiving node) pairs
	Lost      int     `json:"lost"`
	MedianMs  float64 `json:"median_ms"`
	P90Ms     float64 `json:"p90_ms"`
	P99Ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	ElapsedS  float64 `json:"elapsed_s"`
	Clients   int     `json:"clients"`
	// PublishRate is entries per second, from the first publication to
	// the return of the last.
	PublishRate float64 `json:"publish_rate"`
	// Publish (committed on the publishing node) latency: median and p99.
	CommitMedianMs float64 `json:"commit_median_ms"`
	CommitP99Ms    float64 `json:"commit_p99_ms"`
}

func (c *cli) benchCommand() *cobra.Command {
	var entries, clients int
	var interval, bound time.Duration
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "bench [--entries N] [--clients N] [--interval D]",
		Short: "Measure publish-to-matchable latency across a 3-node loopback federation",
		Long: `Start a federation of three nodes on loopback (in a temporary directory,
on free ports), publish N additions from the referral unit's node, one
every --interval, and measure for each of the two platforms the time from
publishing to the entry being stored there and so matchable. With
--clients N, N publishers run at once, as N API clients would (concurrent
publications share the node's write transactions). Prints the publish
rate and the distribution: median, p90, p99, max, and entries not
delivered within --bound after the last publication.`,
		Args: args("", 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if entries < 1 || entries > 1_000_000 {
				return usagef("--entries %d: want 1 to 1000000", entries)
			}
			if clients < 1 || clients > 1000 {
				return usagef("--clients %d: want 1 to 1000", clients)
			}
			if interval < 0 || bound <= 0 {
				return usagef("--interval must be >= 0 and --bound > 0")
			}
			dir, err := os.MkdirTemp("", "staydown-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			f, err := localfed.Create(dir, "staydown-bench", localfed.Default, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := f.Start(ctx, slog.LevelWarn); err != nil {
				return err
			}
			if err := f.WaitMesh(ctx); err != nil {
				return err
			}
			if cpuProfile != "" {
				pf, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer pf.Close()
				if err := pprof.StartCPUProfile(pf); err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			res, err := localfed.Bench(ctx, f, entries, clients, max(interval, time.Microsecond), bound)
			if err != nil {
				return err
			}
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			r := benchReport{Nodes: len(f.Nodes), Entries: res.Entries, Delivered: len(res.Latencies), Lost: res.Lost,
				MedianMs: ms(res.Quantile(0.5)), P90Ms: ms(res.Quantile(0.9)), P99Ms: ms(res.Quantile(0.99)),
				MaxMs: ms(res.Quantile(1)), ElapsedS: res.Elapsed.Seconds(), Clients: clients,
				PublishRate:    float64(res.Entries) / res.Publishing.Seconds(),
				CommitMedianMs: ms(res.CommittedQuantile(0.5)), CommitP99Ms: ms(res.CommittedQuantile(0.99))}
			if c.json {
				return c.printJSON(r)
			}
			fmt.Fprintf(c.stdout, "%d nodes, %d entries published by %d clients, each one every %v: %.0f entries/s; publish -> matchable on each of %d platforms:\n",
				r.Nodes, r.Entries, clients, interval, r.PublishRate, len(f.Nodes)-1)
			fmt.Fprintf(c.stdout, "  median %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n", r.MedianMs, r.P90Ms, r.P99Ms, r.MaxMs)
			fmt.Fprintf(c.stdout, "  publish (committed on the publishing node): median %.2f ms  p99 %.2f ms\n", r.CommitMedianMs, r.CommitP99Ms)
			fmt.Fprintf(c.stdout, "  delivered %d of %d (lost to gossip within %v: %d); %.1f s in all\n",
				r.Delivered, r.Delivered+r.Lost, bound, r.Lost, r.ElapsedS)
			return nil
		},
	}
	cmd.Flags().IntVar(&entries, "entries", 500, "additions to publish")
	cmd.Flags().IntVar(&clients, "clients", 1, "concurrent publishers")
	cmd.Flags().DurationVar(&interval, "interval", 10*time.Millisecond, "pause between publications")
	cmd.Flags().DurationVar(&bound, "bound", 10*time.Second, "how long to wait for stragglers after the last publication")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the publications (all three nodes: one process) to this file, for go tool pprof")
	return cmd
}
