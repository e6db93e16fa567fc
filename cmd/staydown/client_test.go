package main

import "testing"

func TestDialAddr(t *testing.T) {
	tests := []struct{ api, dial string }{
		{"127.0.0.1:7001", "127.0.0.1:7001"},
		{"localhost:7001", "localhost:7001"},
		{"[::1]:7001", "[::1]:7001"},
		{"10.0.0.5:7001", "10.0.0.5:7001"},
		{"0.0.0.0:7001", "127.0.0.1:7001"}, // listens everywhere: reach it on loopback
		{"[::]:7001", "[::1]:7001"},
		{":7001", "127.0.0.1:7001"},
	}
	for _, tt := range tests {
		t.Run(tt.api, func(t *testing.T) {
			if got := dialAddr(tt.api); got != tt.dial {
				t.Errorf("dialAddr(%q) = %q, want %q", tt.api, got, tt.dial)
			}
		})
	}
}

func TestShort(t *testing.T) {
	long := ""
	for range 79 {
		long += "a"
	}
	long += "é and more"
	if got, want := short(long), `"`+long[:79]+`"…`; got != want {
		t.Errorf("short cut inside a rune: %s", got)
	}
	if got := short("abc"); got != `"abc"` {
		t.Errorf("short(abc) = %s", got)
	}
}
