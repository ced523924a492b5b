package query

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/window"
)

// sparkBatch is one line of testdata/spark/<preset>/<mode>.jsonl: what Spark
// did in one micro-batch (spark/golden/queries.py).
type sparkBatch struct {
	Batch     int64                `json:"batch"`
	Input     int64                `json:"input"`
	Watermark *string              `json:"watermark"`
	Dropped   int64                `json:"dropped"`
	Rows      [][]*json.RawMessage `json:"rows"`
}

func readGzipLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, l := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// sparkRow renders a Spark row [start, end, keys..., values...] as a line.
func sparkRow(t *testing.T, r []*json.RawMessage) string {
	var parts []string
	for _, c := range r {
		if c == nil {
			parts = append(parts, "NULL")
			continue
		}
		var v any
		if err := json.Unmarshal(*c, &v); err != nil {
			t.Fatal(err)
		}
		switch v := v.(type) {
		case string:
			parts = append(parts, v)
		case float64:
			parts = append(parts, fmt.Sprintf("%d", int64(v)))
		case nil:
			parts = append(parts, "NULL")
		default:
			t.Fatalf("unexpected cell %v", v)
		}
	}
	return strings.Join(parts, " | ")
}

// ourRow renders an engine row as sparkRow renders Spark's.
func ourRow(c *Compiled, r *window.Row) string {
	parts := []string{fmt.Sprint(r.Start), fmt.Sprint(r.End)}
	for _, k := range r.Keys {
		if k.Valid {
			parts = append(parts, k.S)
		} else {
			parts = append(parts, "NULL")
		}
	}
	for _, v := range c.Values(r) {
		parts = append(parts, v.String())
	}
	return strings.Join(parts, " | ")
}

// TestPresetsEqualSpark replays the batches Spark ran for each preset, in each
// mode, through the compiled preset and the engine, and requires the same
// batches: the same rows with the same values (approximate distinct counts,
// averages and all, equal, not close), the same watermark, the same number of
// rows dropped as late, and a no-data batch exactly where Spark ran one.
func TestPresetsEqualSpark(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "spark", "*"))
	if err != nil {
		t.Fatal(err)
	}
	tested := map[string]bool{}
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		name := filepath.Base(dir)
		pre, ok := Preset(name)
		if !ok {
			t.Errorf("%s: no preset of that name", dir)
			continue
		}
		inputs, _ := filepath.Glob(filepath.Join(dir, "input-*.jsonl.gz"))
		slices.Sort(inputs)
		for _, mode := range pre.Modes() {
			path := filepath.Join(dir, mode.String()+".jsonl")
			if _, err := os.Stat(path); err != nil {
				continue
			}
			tested[name+" "+mode.String()] = true
			t.Run(name+"/"+mode.String(), func(t *testing.T) {
				q := pre
				q.Mode = mode
				replay(t, q, inputs, path)
			})
		}
	}
	// Every preset in its own mode at least.
	for _, p := range presets {
		if !tested[p.Name+" "+p.Mode.String()] {
			t.Errorf("preset %s: no Spark golden output for its mode %v (run spark/golden/queries.py)", p.Name, p.Mode)
		}
	}
}

func replay(t *testing.T, q Query, inputs []string, path string) {
	c, err := Compile(q)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := window.New(c.Engine)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := make([]window.Value, len(q.GroupBy))
	in := make([]window.Input, len(c.Engine.Aggs))
	next := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	nonEmpty := 0
	for sc.Scan() {
		var sb sparkBatch
		if err := json.Unmarshal(sc.Bytes(), &sb); err != nil {
			t.Fatal(err)
		}
		if sb.Input == 0 {
			if !eng.NeedsNoDataBatch() {
				t.Fatalf("batch %d: Spark ran a no-data batch, the engine wants none", sb.Batch)
			}
		} else {
			if next >= len(inputs) {
				t.Fatalf("batch %d: Spark read input the testdata does not hold", sb.Batch)
			}
			if eng.NeedsNoDataBatch() {
				t.Fatalf("batch %d: the engine wants a no-data batch before it, Spark ran none", sb.Batch)
			}
			recs := readGzipLines(t, inputs[next])
			next++
			if int64(len(recs)) != sb.Input {
				t.Fatalf("batch %d: Spark read %d records, %s holds %d", sb.Batch, sb.Input, inputs[next-1], len(recs))
			}
			var p chat.Projection
			for _, r := range recs {
				if err := chat.Project(r, &p); err != nil {
					t.Fatalf("batch %d: %s: %v", sb.Batch, r, err)
				}
				c.Project(&p, keys, in)
				if c.NeedsInputs() {
					eng.AddWith(p.Timestamp, keys, in)
				} else {
					eng.Add(p.Timestamp, keys)
				}
			}
		}
		b := eng.RunBatch()
		c.Sort(b.Rows)
		if b.ID != sb.Batch {
			t.Fatalf("batch id %d, Spark's %d", b.ID, sb.Batch)
		}
		if sb.Watermark != nil {
			if got := time.UnixMicro(b.Watermark).UTC().Format("2006-01-02T15:04:05.000Z"); got != *sb.Watermark {
				t.Errorf("batch %d: watermark %s, Spark's %s", b.ID, got, *sb.Watermark)
			}
		}
		if b.Late != sb.Dropped {
			t.Errorf("batch %d: %d rows dropped as late, Spark dropped %d", b.ID, b.Late, sb.Dropped)
		}
		var want, got []string
		for _, r := range sb.Rows {
			want = append(want, sparkRow(t, r))
		}
		for i := range b.Rows {
			got = append(got, ourRow(c, &b.Rows[i]))
		}
		if len(q.OrderBy) == 0 {
			// Spark's update and append rows come in no order.
			slices.Sort(want)
			slices.Sort(got)
		} else {
			// Spark's sort is not stable among equal sort keys: compare the
			// sort keys in order, and the rows as sets.
			if gk, wk := sortKeys(got), sortKeys(want); !slices.Equal(gk, wk) {
				t.Errorf("batch %d: rows sorted as\n%s\nSpark sorted them as\n%s", b.ID, strings.Join(gk, "\n"), strings.Join(wk, "\n"))
			}
			slices.Sort(want)
			slices.Sort(got)
		}
		if !slices.Equal(got, want) {
			t.Errorf("batch %d: rows differ from Spark's:\n%s", b.ID, diff(got, want))
		}
		if len(b.Rows) > 0 {
			nonEmpty++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if next != len(inputs) {
		t.Errorf("%d of %d input files replayed", next, len(inputs))
	}
	if nonEmpty == 0 {
		t.Error("no batch emitted a row: the test compares nothing")
	}
	if eng.NeedsNoDataBatch() {
		t.Error("the engine wants a no-data batch after Spark's last batch")
	}
}

// sortKeys keeps the window and the last column (the top-channels sort: window, count DESC).
func sortKeys(rows []string) []string {
	var out []string
	for _, r := range rows {
		f := strings.Split(r, " | ")
		out = append(out, f[0]+" "+f[len(f)-1])
	}
	return out
}

func diff(got, want []string) string {
	var b strings.Builder
	for _, g := range got {
		if !slices.Contains(want, g) {
			fmt.Fprintf(&b, "  + %s\n", g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			fmt.Fprintf(&b, "  - %s\n", w)
		}
	}
	if b.Len() == 0 {
		fmt.Fprintf(&b, "  (same rows, other multiplicities: %d rows, Spark %d)\n", len(got), len(want))
	}
	return b.String()
}
