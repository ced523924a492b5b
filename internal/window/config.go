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

// Config is the query: sliding event-time windows, a watermark, an output mode
// and the number of group-by columns.
type Config struct {
	// Size and Slide are the window length and the slide between window
	// starts (tumbling windows when equal). Slide <= Size, both > 0 and whole
	// microseconds.
	Size, Slide time.Duration
	// Delay is the watermark delay (withWatermark): how far behind the
	// latest event time the watermark trails. >= 0, whole milliseconds (the
	// watermark's precision in Spark).
	Delay time.Duration
	// Mode is the output mode.
	Mode Mode
	// Keys is the number of group-by columns (>= 0).
	Keys int
}

// Validate reports the first invariant c breaks, saying what to change.
func (c Config) Validate() error {
	switch {
	case c.Size <= 0:
		return fmt.Errorf("window length %v: must be positive, e.g. 1m", c.Size)
	case c.Slide <= 0:
		return fmt.Errorf("window slide %v: must be positive, e.g. 30s (equal to the window length for tumbling windows)", c.Slide)
	case c.Size%time.Microsecond != 0:
		return fmt.Errorf("window length %v: must be a whole number of microseconds", c.Size)
	case c.Slide%time.Microsecond != 0:
		return fmt.Errorf("window slide %v: must be a whole number of microseconds", c.Slide)
	case c.Slide > c.Size:
		return fmt.Errorf("window slide %v is longer than the window length %v: the slide must be at most the length (equal for tumbling windows)", c.Slide, c.Size)
	case c.Delay < 0:
		return fmt.Errorf("watermark delay %v: must not be negative (0 accepts no late events)", c.Delay)
	case c.Delay%time.Millisecond != 0:
		return fmt.Errorf("watermark delay %v: must be a whole number of milliseconds (the watermark's precision)", c.Delay)
	case c.Mode != Update && c.Mode != Append && c.Mode != Complete:
		return fmt.Errorf("output mode %d: want update, append or complete", int(c.Mode))
	case c.Keys < 0:
		return fmt.Errorf("group-by columns %d: must not be negative", c.Keys)
	}
	if n := windowsPerEvent(c); n > MaxWindowsPerEvent {
		return fmt.Errorf("window length %v with slide %v puts every event in %d windows: at most %d; use a longer slide", c.Size, c.Slide, n, MaxWindowsPerEvent)
	}
	return nil
}

// windowsPerEvent is Spark's ceil(size/slide): how many candidate windows an
// event is checked against.
func windowsPerEvent(c Config) int64 {
	size, slide := int64(c.Size/time.Microsecond), int64(c.Slide/time.Microsecond)
	return (size + slide - 1) / slide
}
