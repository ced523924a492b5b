package workload

import (
	"testing"

	"github.com/cordstream/cordstream/internal/chat"
)

// TestShape checks the traffic has the promised shape: it encodes and
// decodes, is deterministic, message ids are unique, authors are skewed, sizes are realistic and
// event time advances at the configured rate.
func TestShape(t *testing.T) {
	const n = 50_000
	g := New(Config{Seed: 7})
	g2 := New(Config{Seed: 7})
	counts := map[string]int{}
	ids := map[string]bool{}
	var bytes, empty, maxLen int
	var first, last int64
	var m, m2 chat.Message
	for i := range n {
		g.Next(&m)
		g2.Next(&m2)
		b, err := chat.Encode(&m)
		if err != nil {
			t.Fatalf("message %d: encode: %v", i, err)
		}
		b2, _ := chat.Encode(&m2)
		if string(b) != string(b2) {
			t.Fatalf("message %d differs between two generators with the same seed", i)
		}
		d, err := chat.Decode(b)
		if err != nil {
			t.Fatalf("message %d: decode %s: %v", i, b, err)
		}
		counts[*d.AuthorName]++
		if ids[d.MessageID] {
			t.Fatalf("message %d: message id %s repeats an earlier message's", i, d.MessageID)
		}
		ids[d.MessageID] = true
		bytes += len(b)
		if *d.Content == "" {
			empty++
		}
		maxLen = max(maxLen, len(*d.Content))
		ts := d.Timestamp.UnixMicro()
		if i == 0 || ts < first {
			first = ts
		}
		last = max(last, ts)
	}
	if got := len(counts); got < 5_000 || got > 10_020 {
		t.Errorf("distinct authors = %d, want most of the 10,000", got)
	}
	top := 0
	for _, c := range counts {
		top = max(top, c)
	}
	if share := float64(top) / n; share < 0.01 {
		t.Errorf("most active author wrote %.2f%% of messages, want a skew (>= 1%%)", share*100)
	}
	if avg := bytes / n; avg < 300 || avg > 600 {
		t.Errorf("average record size = %d bytes, want 300-600", avg)
	}
	if share := float64(empty) / n; share < 0.03 || share > 0.1 {
		t.Errorf("empty contents = %.1f%%, want about 6%%", share*100)
	}
	if maxLen < 500 {
		t.Errorf("longest content = %d bytes, want a long tail", maxLen)
	}
	// Disorder and late messages move the ends by a few minutes at most.
	span := float64(last-first) / 1e6
	if want := float64(n) / 5000; span < want-1 || span > want+200 {
		t.Errorf("event time span = %.1f s, want about %.1f s", span, want)
	}
}
