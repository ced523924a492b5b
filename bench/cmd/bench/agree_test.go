//go:build linux

package main

import (
	"strings"
	"testing"
)

func TestReadRowsKeepsTheLastCount(t *testing.T) {
	in := `{"batch_id":0,"window_start":"2025-11-07T17:59:30Z","window_end":"2025-11-07T18:00:30Z","author_name":"alice","message_count":1}
{"batch_id":0,"window_start":"2025-11-07T18:00:00Z","window_end":"2025-11-07T18:01:00Z","author_name":"alice","message_count":1}

{"batch_id":1,"window_start":"2025-11-07T18:00:00Z","window_end":"2025-11-07T18:01:00Z","author_name":"alice","message_count":3}
{"batch_id":1,"window_start":"2025-11-07T18:00:00Z","window_end":"2025-11-07T18:01:00Z","author_name":null,"message_count":2}
`
	c, err := readRows(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := finalCounts{
		"2025-11-07T17:59:30Z 2025-11-07T18:00:30Z alice":    1,
		"2025-11-07T18:00:00Z 2025-11-07T18:01:00Z alice":    3,
		"2025-11-07T18:00:00Z 2025-11-07T18:01:00Z \x00null": 2,
	}
	if len(c) != len(want) {
		t.Fatalf("got %v, want %v", c, want)
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("%q: got %d, want %d", k, c[k], v)
		}
	}
	if c.total() != 6 {
		t.Errorf("total %d, want 6", c.total())
	}
}

func TestReadRowsRejectsBadRows(t *testing.T) {
	for _, in := range []string{
		`not json`,
		`{"window_start":"2025-11-07T18:00:00Z","window_end":"2025-11-07T18:01:00Z","author_name":"a"}`,
		`{"window_end":"2025-11-07T18:01:00Z","author_name":"a","message_count":1}`,
	} {
		if _, err := readRows(strings.NewReader(in + "\n")); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

func TestCompare(t *testing.T) {
	ours := finalCounts{"w1 a": 2, "w1 b": 1, "w2 a": 5}
	if a := compare(KindStreamsEOS, ours, finalCounts{"w1 a": 2, "w1 b": 1, "w2 a": 5}); !a.Agree || a.Equal != 3 || len(a.Examples) != 0 {
		t.Errorf("equal counts: %+v", a)
	}
	a := compare(KindStreamsEOS, ours, finalCounts{"w1 a": 2, "w1 b": 2, "w3 \x00null": 1})
	if a.Agree || a.Equal != 1 || a.Differ != 1 || a.OnlyOurs != 1 || a.OnlyPeer != 1 || a.Rows != 3 || a.Total != 5 {
		t.Errorf("different counts: %+v", a)
	}
	if len(a.Examples) != 3 || !strings.Contains(strings.Join(a.Examples, "\n"), "w3 null: cordstream none") {
		t.Errorf("examples: %q", a.Examples)
	}
	if a := compare(KindStreamsEOS, finalCounts{}, finalCounts{}); a.Agree {
		t.Errorf("nothing counted by either agrees: %+v", a)
	}
}
