package localfed

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// TestBench runs a small bench on a real 3-node federation and checks the
// bookkeeping: every (entry, platform) pair is accounted for, delivered or
// lost, and the quantiles are ordered.
func TestBench(t *testing.T) {
	f, err := Create(t.TempDir(), "bench-test", Default, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := f.Start(ctx, slog.LevelWarn); err != nil {
		t.Fatal(err)
	}
	if err := f.WaitMesh(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := Bench(ctx, f, 20, 4, time.Millisecond, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(res.Latencies) + res.Lost; got != 20*2 {
		t.Fatalf("%d pairs accounted for, want 40", got)
	}
	if len(res.Latencies) == 0 {
		t.Fatal("nothing delivered")
	}
	q50, q90, q100 := res.Quantile(0.5), res.Quantile(0.9), res.Quantile(1)
	if !(0 < q50 && q50 <= q90 && q90 <= q100) {
		t.Errorf("quantiles out of order: %v %v %v", q50, q90, q100)
	}
	t.Logf("20 entries: median %v p90 %v max %v lost %d", q50, q90, q100, res.Lost)
}

func TestQuantile(t *testing.T) {
	r := BenchResult{Latencies: []time.Duration{5, 1, 4, 2, 3}}
	for q, want := range map[float64]time.Duration{0.2: 1, 0.5: 3, 0.9: 5, 1: 5, 0: 1} {
		if got := r.Quantile(q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if (BenchResult{}).Quantile(0.5) != 0 {
		t.Error("Quantile of nothing is not 0")
	}
}
