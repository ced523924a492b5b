package window

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*/want.txt from the engine's output")

// Scenario files: testdata/<case>/events.txt is the input, want.txt the
// expected output (see TestScenarios).
//
// events.txt, one item per line ('#' starts a comment):
//
//	window 10m          window length (Go duration)
//	slide 5m            slide (default: the window length)
//	watermark 10m       watermark delay (default 0)
//	mode update         update | append | complete (default update)
//	keys word           group-by column names (none: a global count)
//	date 2024-01-01     the day for event times written as HH:MM[:SS[.f]]
//	12:07 dog           an event: time, then one value per key
//	2024-01-01T12:07:00.5 "two words"   full timestamp (UTC); quoted value
//	@-1500 NULL         time as raw Unix µs; NULL is SQL NULL ("NULL" is a string)
//	batch               end the micro-batch (RunBatch)
//	trigger             a processing-time trigger fires: run a batch if
//	                    events arrived or NeedsNoDataBatch, else print
//	                    "trigger: no batch"
//
// want.txt lists, per batch, its counters and watermarks, whether a no-data
// batch is due after it, and the emitted rows.
type scenario struct {
	cfg   Config
	keys  []string
	steps []step
}

type step struct {
	kind string // "event", "batch", "trigger"
	ts   int64
	vals []Value
	line int
}

func parseScenario(path string) (*scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := &scenario{cfg: Config{Mode: Update}}
	var day time.Time
	haveKeys := false
	sc.cfg.Slide = -1
	s := bufio.NewScanner(f)
	for ln := 1; s.Scan(); ln++ {
		line := s.Text()
		if i := strings.Index(line, "#"); i >= 0 && !strings.Contains(line[:i], `"`) {
			line = line[:i]
		}
		fields, err := splitFields(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, ln, err)
		}
		if len(fields) == 0 {
			continue
		}
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: %s", path, ln, fmt.Sprintf(format, a...))
		}
		dur := func() (time.Duration, error) {
			if len(fields) != 2 {
				return 0, bad("%s wants one duration", fields[0].s)
			}
			return time.ParseDuration(fields[1].s)
		}
		switch fields[0].s {
		case "window":
			if sc.cfg.Window, err = dur(); err != nil {
				return nil, err
			}
		case "slide":
			if sc.cfg.Slide, err = dur(); err != nil {
				return nil, err
			}
		case "watermark":
			if sc.cfg.Watermark, err = dur(); err != nil {
				return nil, err
			}
		case "mode":
			if len(fields) != 2 {
				return nil, bad("mode wants one word")
			}
			if sc.cfg.Mode, err = ParseMode(fields[1].s); err != nil {
				return nil, bad("%v", err)
			}
		case "keys":
			haveKeys = true
			for _, f := range fields[1:] {
				sc.keys = append(sc.keys, f.s)
			}
		case "date":
			if len(fields) != 2 {
				return nil, bad("date wants yyyy-mm-dd")
			}
			if day, err = time.Parse(time.DateOnly, fields[1].s); err != nil {
				return nil, bad("%v", err)
			}
		case "batch", "trigger":
			if len(fields) != 1 {
				return nil, bad("%s takes no arguments", fields[0].s)
			}
			sc.steps = append(sc.steps, step{kind: fields[0].s, line: ln})
		default:
			if !haveKeys {
				return nil, bad("events before the keys line")
			}
			ts, err := parseTime(fields[0].s, day)
			if err != nil {
				return nil, bad("%v", err)
			}
			if len(fields)-1 != len(sc.keys) {
				return nil, bad("event has %d values, want %d (one per key)", len(fields)-1, len(sc.keys))
			}
			vals := make([]Value, 0, len(sc.keys))
			for _, f := range fields[1:] {
				if f.s == "NULL" && !f.quoted {
					vals = append(vals, Value{})
				} else {
					vals = append(vals, Value{S: f.s, Valid: true})
				}
			}
			sc.steps = append(sc.steps, step{kind: "event", ts: ts, vals: vals, line: ln})
		}
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	if sc.cfg.Slide < 0 {
		sc.cfg.Slide = sc.cfg.Window
	}
	sc.cfg.Keys = len(sc.keys)
	return sc, nil
}

type field struct {
	s      string
	quoted bool
}

// splitFields splits on blanks; a field starting with '"' is a Go string
// literal.
func splitFields(line string) ([]field, error) {
	var out []field
	for {
		line = strings.TrimLeft(line, " \t")
		if line == "" {
			return out, nil
		}
		if line[0] == '"' {
			end := 1
			for end < len(line) && line[end] != '"' {
				if line[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(line) {
				return nil, fmt.Errorf("unterminated string")
			}
			s, err := strconv.Unquote(line[:end+1])
			if err != nil {
				return nil, err
			}
			out = append(out, field{s: s, quoted: true})
			line = line[end+1:]
			continue
		}
		end := strings.IndexAny(line, " \t")
		if end < 0 {
			end = len(line)
		}
		out = append(out, field{s: line[:end]})
		line = line[end:]
	}
}

func parseTime(s string, day time.Time) (int64, error) {
	if strings.HasPrefix(s, "@") {
		return strconv.ParseInt(s[1:], 10, 64)
	}
	if strings.Contains(s, "T") {
		t, err := time.Parse("2006-01-02T15:04:05.999999999Z07:00", s)
		if err != nil {
			t, err = time.Parse("2006-01-02T15:04:05.999999999", s)
		}
		return t.UnixMicro(), err
	}
	if day.IsZero() {
		return 0, fmt.Errorf("time %q without a date line", s)
	}
	for _, layout := range []string{"15:04", "15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return day.Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute +
				time.Duration(t.Second())*time.Second + time.Duration(t.Nanosecond())).UnixMicro(), nil
		}
	}
	return 0, fmt.Errorf("bad time %q: want HH:MM, HH:MM:SS[.f], yyyy-mm-ddTHH:MM:SS[.f][Z] or @µs", s)
}

// batcher is what a scenario drives: the engine or the reference model.
type batcher interface {
	Add(ts int64, keys []Value)
	RunBatch() Batch
	NeedsNoDataBatch() bool
}

// run plays the scenario on b and returns the rendered output.
func (sc *scenario) run(b batcher) string {
	var out strings.Builder
	pending := false
	for _, st := range sc.steps {
		switch st.kind {
		case "event":
			b.Add(st.ts, st.vals)
			pending = true
		case "trigger":
			if !pending && !b.NeedsNoDataBatch() {
				fmt.Fprintf(&out, "trigger: no batch\n")
				continue
			}
			fallthrough
		case "batch":
			res := b.RunBatch()
			renderBatch(&out, &res, b.NeedsNoDataBatch())
			pending = false
		}
	}
	return out.String()
}

func renderTime(us int64) string {
	t := time.UnixMicro(us).UTC()
	if t.Nanosecond() != 0 {
		return t.Format("2006-01-02 15:04:05.999999")
	}
	return t.Format(time.DateTime)
}

func renderBatch(w *strings.Builder, b *Batch, noData bool) {
	fmt.Fprintf(w, "batch %d: input %d, late %d", b.ID, b.Input, b.Late)
	if b.OutOfRange > 0 {
		fmt.Fprintf(w, ", out of range %d", b.OutOfRange)
	}
	fmt.Fprintf(w, ", state %d\n", b.StateRows)
	fmt.Fprintf(w, "  watermark: late %s, evict %s, next %s", renderTime(b.WatermarkForLate), renderTime(b.Watermark), renderTime(b.NextWatermark))
	if noData {
		fmt.Fprintf(w, " (no-data batch due)")
	}
	fmt.Fprintf(w, "\n")
	for _, r := range b.Rows {
		fmt.Fprintf(w, "  [%s, %s)", renderTime(r.Start), renderTime(r.End))
		for _, k := range r.Keys {
			switch {
			case !k.Valid:
				w.WriteString(" NULL")
			case k.S == "" || k.S == "NULL" || strings.ContainsAny(k.S, " \t\"#\\") || !strconv.CanBackquote(k.S):
				w.WriteString(" " + strconv.Quote(k.S))
			default:
				w.WriteString(" " + k.S)
			}
		}
		fmt.Fprintf(w, " %d\n", r.Count)
	}
}

func TestScenarios(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/events.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no scenarios under testdata/")
	}
	for _, path := range dirs {
		dir := filepath.Dir(path)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			sc, err := parseScenario(path)
			if err != nil {
				t.Fatal(err)
			}
			e, err := New(sc.cfg)
			if err != nil {
				t.Fatalf("New(%+v): %v", sc.cfg, err)
			}
			got := sc.run(e)
			// The brute-force reference must agree on every scenario.
			if ref := sc.run(newRef(sc.cfg)); ref != got {
				t.Errorf("engine and reference model disagree\nengine:\n%s\nreference:\n%s", got, ref)
			}
			wantPath := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(wantPath, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantPath)
			if err != nil {
				t.Fatalf("%v (run with -update to create it, then review it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s\ngot:\n%s\nwant:\n%s", wantPath, got, want)
			}
		})
	}
}
