package query

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/window"
)

func TestParseFile(t *testing.T) {
	src := `# two queries
queries:
  per_channel:
    window: 5 minutes
    watermark: 2m
    group_by: [channel_id]
    aggregates:
      - count(*) AS message_count
      - AVG(length(content)) as avg_chars
      - approx_count_distinct(author_id, 0.01)
    mode: append
    outputs: [console, "jsonl:-", "kafka:per-channel"]
  sessions:
    preset: member-sessions
    group_by: author_id
  top:
    preset: top-channels
    window: 1h
`
	qs, err := Parse("q.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 3 {
		t.Fatalf("%d queries", len(qs))
	}
	want := Query{
		Name: "per_channel", Window: 5 * time.Minute, Slide: 5 * time.Minute, Watermark: 2 * time.Minute,
		GroupBy: []string{"channel_id"},
		Aggregates: []Aggregate{
			{Func: window.Count, Alias: "message_count"},
			{Func: window.Avg, Expr: Expr{Column: "content", Length: true}, Alias: "avg_chars"},
			{Func: window.ApproxCountDistinct, Expr: Expr{Column: "author_id"}, RelativeSD: 0.01, Alias: "approx_count_distinct(author_id)"},
		},
		Mode:    window.Append,
		Outputs: []Output{{Kind: "console"}, {Kind: "jsonl", Target: "-"}, {Kind: "kafka", Target: "per-channel"}},
	}
	if !reflect.DeepEqual(qs[0], want) {
		t.Errorf("got  %+v\nwant %+v", qs[0], want)
	}
	s := qs[1]
	if s.Name != "sessions" || s.SessionGap != 10*time.Minute || !reflect.DeepEqual(s.GroupBy, []string{"author_id"}) || s.Mode != window.Append {
		t.Errorf("preset with an override: %+v", s)
	}
	top := qs[2]
	if top.Window != time.Hour || top.Slide != time.Hour || top.Mode != window.Complete || len(top.OrderBy) != 2 {
		t.Errorf("preset with a new window: %+v", top)
	}
	for _, q := range qs {
		if _, err := Compile(q); err != nil {
			t.Errorf("%s: %v", q.Name, err)
		}
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	cases := []struct{ src, want string }{
		{"queries:\n  a:\n    window: 5 parsecs\n    watermark: 1m\n", "q.yaml:3: query a: window: \"5 parsecs\" is not a duration"},
		{"queries:\n  a:\n    window: 1m\n    watermark: 1m\n    group_by: [channel_id]\n    aggregates: [count(*)]\n    mode: update\n    order_by: [count(1) DESC]\n", "q.yaml:8: query a: order_by needs complete mode"},
		{"queries:\n  s:\n    session_gap: 10m\n    watermark: 1m\n    group_by: [author_name]\n    aggregates: [count(*)]\n    mode: update\n", "q.yaml:7: query s: output mode update is not supported for session windows"},
		{"queries:\n  a:\n    window: 1m\n    watermark: 1m\n    aggregates:\n      - count(*)\n      - sum(content)\n", "q.yaml:7: query a: aggregate \"sum(content)\": sum: needs a number: sum(length(content))"},
		{"queries:\n  a:\n    window: 1m\n    watermark: 1m\n    group_by: [author]\n    aggregates: [count(*)]\n", "q.yaml:5: query a: unknown group-by column \"author\""},
		{"queries:\n  a:\n    window: 1m\n    aggregates: [count(*)]\n", "q.yaml:2: query a: no watermark"},
		{"queries:\n  a:\n    window: 1m\n    watermark: 1m\n    colour: red\n", "q.yaml:5: query a: unknown setting \"colour\""},
		{"queries:\n  a:\n    preset: busiest\n", "q.yaml:3: query a: unknown preset \"busiest\""},
		{"queries:\n  a:\n    preset: seed\n  a:\n    preset: seed\n", "q.yaml:4: query \"a\" is defined twice (first on line 2)"},
		{"queries:\n  a:\n    window: 1m\n    watermark: 1m\n    aggregates: [count(*) AS n, max(length(content)) AS n]\n", "q.yaml:5: query a: column name \"n\" used twice"},
		{"queries:\n  a:\n    preset: seed\n    outputs: [printer]\n", "q.yaml:4: query a: unknown output \"printer\""},
		{"queries:\n  a:\n    preset: seed\n    aggregates: [median(length(content))]\n", "q.yaml:4: query a: aggregate \"median(length(content))\": unknown function"},
		{"queries:\n  a:\n    preset: seed\n    aggregates: [\"approx_count_distinct(author_id, 0.9)\"]\n", "too large"},
		{"queries:\n  a:\n    preset: seed\n    aggregates: [approx_count_distinct(author_id, 0.9)]\n", "q.yaml:4: query a: aggregate \"approx_count_distinct(author_id\": unbalanced parentheses (in a [a, b] list a comma splits the entry: quote it"},
		{"queries:\n  a: [1, 2\n", "q.yaml: "},
		{"", "q.yaml: empty"},
		{"other: 1\n", "q.yaml:1: unknown key \"other\""},
		{"queries:\n  s:\n    session_gap: 10m\n    watermark: 1m\n    aggregates: [count(*)]\n    mode: append\n", "q.yaml:2: query s: session windows need at least one group-by column"},
	}
	for _, c := range cases {
		_, err := Parse("q.yaml", []byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got  %v\n want one containing %q", c.src, err, c.want)
		}
	}
}

func TestParseFileReadsAFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "queries.yaml")
	if err := os.WriteFile(p, []byte("queries:\n  s:\n    preset: seed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	qs, err := ParseFile(p)
	if err != nil || len(qs) != 1 || qs[0].Name != "s" {
		t.Fatalf("%v %v", qs, err)
	}
	if _, err := ParseFile(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing file parsed")
	}
}

func TestParseDuration(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"1m": time.Minute, "30s": 30 * time.Second, "1 minute": time.Minute, "10 minutes": 10 * time.Minute,
		"1 hour 30 minutes": 90 * time.Minute, "1 day": 24 * time.Hour, "500 milliseconds": 500 * time.Millisecond, "0": 0,
	} {
		if got, err := ParseDuration(s); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "-1m", "1 fortnight", "minute", "99999999999999 weeks"} {
		if _, err := ParseDuration(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
}

func TestPresetsCompileAndSeedIsTheDefault(t *testing.T) {
	for _, name := range PresetNames() {
		q, _ := Preset(name)
		c, err := Compile(q)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, m := range q.Modes() {
			q.Mode = m
			if _, err := Compile(q); err != nil {
				t.Errorf("%s in %v: %v", name, m, err)
			}
		}
		if name == "seed" {
			want := window.Config{Window: time.Minute, Slide: 30 * time.Second, Watermark: time.Minute, Mode: window.Update, Keys: 1}
			if !reflect.DeepEqual(c.Engine, want) || c.NeedsInputs() {
				t.Errorf("seed compiles to %+v", c.Engine)
			}
		}
	}
	// What Spark refuses, refused.
	s, _ := Preset("member-sessions")
	s.Mode = window.Update
	if _, err := Compile(s); err == nil || !strings.Contains(err.Error(), "use append") {
		t.Errorf("sessions in update mode: %v", err)
	}
	top, _ := Preset("top-channels")
	top.Mode = window.Update
	if _, err := Compile(top); err == nil || !strings.Contains(err.Error(), "complete mode") {
		t.Errorf("a sort in update mode: %v", err)
	}
}

func TestProjectLengthIsSparks(t *testing.T) {
	q, _ := Preset("channel-activity")
	c, err := Compile(q)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]window.Value, 1)
	in := make([]window.Input, len(c.Engine.Aggs))
	for body, want := range map[string]int64{
		`"héllo 👋"`:             7,
		`"a\u00e9\ud83d\ude00"`: 3, // escapes decoded, a surrogate pair joined
		`"\ud83d"`:              1, // a lone surrogate: '?' in Spark
		`""`:                    0,
	} {
		rec := `{"channel_id":"c","content":` + body + `,"message_timestamp":"2025-11-07 18:00:00.000"}`
		var p chat.Projection
		if err := chat.Project([]byte(rec), &p); err != nil {
			t.Fatal(err)
		}
		c.Project(&p, keys, in)
		if in[1].I != want || !in[1].Valid {
			t.Errorf("%s: length %d, want %d", body, in[1].I, want)
		}
	}
	var p chat.Projection
	if err := chat.Project([]byte(`{"channel_id":null,"content":null,"message_timestamp":"2025-11-07 18:00:00.000"}`), &p); err != nil {
		t.Fatal(err)
	}
	c.Project(&p, keys, in)
	if keys[0].Valid || in[1].Valid || !in[0].Valid {
		t.Errorf("NULLs: keys %v inputs %v", keys, in)
	}
}

// FuzzParse: any file gives queries or an error, never a panic, and what
// it gives compiles.
func FuzzParse(f *testing.F) {
	f.Add([]byte("queries:\n  a:\n    preset: seed\n"))
	f.Add([]byte("queries:\n  a:\n    window: 1 minute\n    watermark: 0\n    aggregates: [\"approx_count_distinct(author_id, 0.02) AS x\", min(length(content))]\n    mode: complete\n    order_by: [x DESC]\n"))
	f.Add([]byte("queries:\n  s:\n    session_gap: 10m\n    watermark: 1m\n    group_by: author_name\n    aggregates: [count(*)]\n    mode: append\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		qs, err := Parse("f.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error without the file's name: %v", err)
			}
			return
		}
		for _, q := range qs {
			if _, err := Compile(q); err != nil {
				t.Fatalf("%+v parsed but does not compile: %v", q, err)
			}
		}
	})
}
