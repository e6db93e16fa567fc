package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestFloodIsBounded: a thousand lines of one key in a minute make one
// line; the next line after the period carries the count of those
// dropped; another key is not held back by the first.
func TestFloodIsBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := New[string](time.Minute, func() time.Time { return now })
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	for range 1000 {
		l.Log(log, slog.LevelWarn, "peer-a", "bad message", "peer", "peer-a")
		now = now.Add(time.Millisecond)
	}
	l.Log(log, slog.LevelWarn, "peer-b", "bad message", "peer", "peer-b")
	if got := strings.Count(buf.String(), "\n"); got != 2 {
		t.Fatalf("%d lines for a flood of 1000 and one other key, want 2:\n%s", got, buf.String())
	}
	now = now.Add(time.Minute)
	buf.Reset()
	l.Log(log, slog.LevelWarn, "peer-a", "bad message", "peer", "peer-a")
	if want := "peer=peer-a dropped=999\n"; !strings.HasSuffix(buf.String(), want) {
		t.Fatalf("line after the period: %q, want it to end %q", buf.String(), want)
	}
}

// TestDisabledLevelNotCounted: a line its logger would not print neither
// passes nor counts.
func TestDisabledLevelNotCounted(t *testing.T) {
	now := time.Unix(0, 0)
	l := New[int](time.Minute, func() time.Time { return now })
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	l.Log(log, slog.LevelDebug, 1, "x")
	if ok, dropped := l.Allow(1); !ok || dropped != 0 {
		t.Fatalf("after a debug line not printed: Allow = %v, %d; want true, 0", ok, dropped)
	}
}

// TestManyKeysBounded: past MaxKeys keys, a new key's line is dropped
// until the old keys' period has passed.
func TestManyKeysBounded(t *testing.T) {
	now := time.Unix(0, 0)
	l := New[int](time.Minute, func() time.Time { return now })
	for k := range MaxKeys {
		if ok, _ := l.Allow(k); !ok {
			t.Fatalf("key %d refused", k)
		}
	}
	if ok, _ := l.Allow(MaxKeys); ok {
		t.Fatal("a key past MaxKeys passed")
	}
	now = now.Add(time.Minute)
	if ok, _ := l.Allow(MaxKeys); !ok {
		t.Fatal("a new key refused after the old keys' period passed")
	}
	if len(l.keys) != 1 {
		t.Fatalf("%d keys remembered, want 1", len(l.keys))
	}
}
