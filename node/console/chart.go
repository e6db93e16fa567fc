package console

import "fmt"

// chart is a bar chart drawn on the server as inline SVG: geometry only,
// in attributes (the CSP allows no inline style); colours come from the
// stylesheet by class.
type chart struct {
	Title         string
	Width, Height int
	Bars          []bar
	Total         int
	AxisY         int // the baseline's y
}

type bar struct {
	Label      string
	Count      int
	X, Y, W, H int
	LabelX     int
	Text       string // the count, above the bar
	TextY      int
}

// buckets of time to action, in seconds: up to each bound.
var buckets = []struct {
	Label string
	Upto  float64
}{
	{"≤ 15 min", 15 * 60},
	{"≤ 30 min", 30 * 60},
	{"≤ 1 h", 60 * 60},
	{"≤ 2 h", 2 * 60 * 60},
	{"≤ 24 h", 24 * 60 * 60},
	{"> 24 h", 0},
}

// timeToActionChart is the distribution of times to action (seconds).
func timeToActionChart(times []float64) chart {
	const w, h, pad, top = 600, 220, 30, 20
	c := chart{Title: "Time to action", Width: w, Height: h, Total: len(times), AxisY: h - pad}
	counts := make([]int, len(buckets))
	for _, t := range times {
		i := len(buckets) - 1
		for j, b := range buckets[:len(buckets)-1] {
			if t <= b.Upto {
				i = j
				break
			}
		}
		counts[i]++
	}
	most := 1
	for _, n := range counts {
		most = max(most, n)
	}
	slot := (w - 2*pad) / len(buckets)
	for i, n := range counts {
		bh := n * (h - pad - top - 10) / most
		x := pad + i*slot + slot/8
		c.Bars = append(c.Bars, bar{Label: buckets[i].Label, Count: n, X: x, Y: h - pad - bh, W: slot * 3 / 4, H: bh,
			LabelX: x + slot*3/8, Text: fmt.Sprint(n), TextY: h - pad - bh - 4})
	}
	return c
}
