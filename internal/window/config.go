package window

import (
	"fmt"
	"strings"
	"time"
)

// Mode is a streaming output mode: which rows a batch emits.
type Mode int

// The output modes, as in Spark Structured Streaming.
const (
	// Update emits the rows whose count changed in the batch, with their
	// running totals (the seed's mode).
	Update Mode = iota
	// Append emits each row once, with its final count, in the batch whose
	// watermark passes the end of its window.
	Append
	// Complete emits every row in state, every batch. State is never evicted
	// and no row is ever too late.
	Complete
)

// ParseMode parses "update", "append" or "complete" (any case, as Spark's
// outputMode does).
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "update":
		return Update, nil
	case "append":
		return Append, nil
	case "complete":
		return Complete, nil
	}
	return 0, fmt.Errorf("unknown output mode %q: want update, append or complete", s)
}

// String returns the mode's name as ParseMode accepts it.
func (m Mode) String() string {
	switch m {
	case Update:
		return "update"
	case Append:
		return "append"
	case Complete:
		return "complete"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// MaxWindowsPerEvent bounds ceil(Size/Slide), the number of windows one event
// is counted in.
const MaxWindowsPerEvent = 10000

// Timestamps the engine accepts (Unix microseconds): about ±36,000 years, far
// beyond the years 0000-9999 the wire format can carry. With these bounds and
// a time.Duration window (under 300 years) window arithmetic cannot overflow.
const (
	MinTimestamp int64 = -(1 << 60)
	MaxTimestamp int64 = 1 << 60
)

// Config is the query: sliding event-time windows or session windows, a
// watermark, an output mode, the number of group-by columns and the
// aggregates.
type Config struct {
	// Window and Slide are the window length and the slide between window
	// starts (tumbling windows when equal). Slide <= Window, both > 0 and
	// whole microseconds. Both 0 for session windows.
	Window, Slide time.Duration
	// Gap, when set, makes the windows session windows, Spark's
	// session_window(ts, Gap): an event opens the session [ts, ts+Gap), and
	// sessions of a key that overlap or touch merge. > 0 and whole
	// microseconds; Window and Slide are then 0.
	Gap time.Duration
	// Watermark is the watermark delay (withWatermark): how far behind the
	// latest event time the watermark trails. >= 0, whole milliseconds (the
	// watermark's precision in Spark).
	Watermark time.Duration
	// Mode is the output mode.
	Mode Mode
	// Keys is the number of group-by columns (>= 0; >= 1 with session
	// windows).
	Keys int
	// Aggs are the aggregates the query computes, in the order of its output
	// columns. Empty: the count of events only (Row.Count), the seed's
	// query; the engine counts events in every row whatever Aggs holds.
	Aggs []Aggregate
}

// Sessions reports whether the windows are session windows.
func (c Config) Sessions() bool { return c.Gap != 0 }

// Validate reports the first invariant c breaks, saying what to change. It
// is the one check of a window, its slide and its watermark: the flags, a
// queries file and the dashboard's query reach it through their own
// configurations, and its messages name the settings as the flags do.
func (c Config) Validate() error {
	for i, a := range c.Aggs {
		if _, err := a.validate(); err != nil {
			return fmt.Errorf("aggregate %d: %w", i+1, err)
		}
	}
	if c.Gap != 0 {
		return c.validateSessions()
	}
	switch {
	case c.Window <= 0:
		return fmt.Errorf("window %v: must be positive, e.g. 1m", c.Window)
	case c.Slide <= 0:
		return fmt.Errorf("slide %v: must be positive, e.g. 30s (equal to the window for tumbling windows)", c.Slide)
	case c.Window%time.Microsecond != 0:
		return fmt.Errorf("window %v: must be a whole number of microseconds", c.Window)
	case c.Slide%time.Microsecond != 0:
		return fmt.Errorf("slide %v: must be a whole number of microseconds", c.Slide)
	case c.Slide > c.Window:
		return fmt.Errorf("slide %v is longer than the window %v: windows would leave gaps; use a slide <= the window (equal for tumbling windows)", c.Slide, c.Window)
	case c.Watermark < 0:
		return fmt.Errorf("watermark %v: must not be negative (0 accepts no late events)", c.Watermark)
	case c.Watermark%time.Millisecond != 0:
		return fmt.Errorf("watermark %v: must be a whole number of milliseconds (the watermark's precision)", c.Watermark)
	case c.Mode != Update && c.Mode != Append && c.Mode != Complete:
		return fmt.Errorf("output mode %d: want update, append or complete", int(c.Mode))
	case c.Keys < 0:
		return fmt.Errorf("group-by columns %d: must not be negative", c.Keys)
	}
	if n := windowsPerEvent(c); n > MaxWindowsPerEvent {
		return fmt.Errorf("window %v with slide %v puts every event in %d windows: at most %d; use a longer slide", c.Window, c.Slide, n, MaxWindowsPerEvent)
	}
	return nil
}

func (c Config) validateSessions() error {
	switch {
	case c.Window != 0 || c.Slide != 0:
		return fmt.Errorf("session windows (gap %v) take no window length or slide (got %v and %v): set one or the other", c.Gap, c.Window, c.Slide)
	case c.Gap < 0:
		return fmt.Errorf("session gap %v: must be positive, e.g. 10m", c.Gap)
	case c.Gap%time.Microsecond != 0:
		return fmt.Errorf("session gap %v: must be a whole number of microseconds", c.Gap)
	case c.Watermark < 0:
		return fmt.Errorf("watermark %v: must not be negative (0 accepts no late events)", c.Watermark)
	case c.Watermark%time.Millisecond != 0:
		return fmt.Errorf("watermark %v: must be a whole number of milliseconds (the watermark's precision)", c.Watermark)
	case c.Mode == Update:
		return fmt.Errorf("output mode update is not supported for session windows (Spark refuses it too: a session's rows would change key as sessions merge): use append, which emits each session once the watermark passes its end, or complete")
	case c.Mode != Append && c.Mode != Complete:
		return fmt.Errorf("output mode %d: want append or complete for session windows", int(c.Mode))
	case c.Keys < 1:
		return fmt.Errorf("session windows need at least one group-by column (Spark does not support a global aggregation with session windows in a streaming query)")
	}
	return nil
}

// windowsPerEvent is Spark's ceil(size/slide): how many candidate windows an
// event is checked against.
func windowsPerEvent(c Config) int64 {
	size, slide := int64(c.Window/time.Microsecond), int64(c.Slide/time.Microsecond)
	return (size + slide - 1) / slide
}
