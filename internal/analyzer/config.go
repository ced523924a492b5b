package analyzer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/window"
)

// The columns a query can group by, as named on the wire.
var groupColumns = []string{chat.FieldAuthorName, chat.FieldAuthorID, chat.FieldChannelID, chat.FieldGuildID}

// GroupColumns returns the names accepted in Config.GroupBy.
func GroupColumns() []string { return slices.Clone(groupColumns) }

// Defaults of the seed's query.
const (
	DefaultWindow    = time.Minute
	DefaultSlide     = 30 * time.Second
	DefaultWatermark = time.Minute
	DefaultTrigger   = 5 * time.Second
	DefaultGroupBy   = chat.FieldAuthorName
	// DefaultMaxEventTimeAhead is how far a record's event time may be
	// ahead of its Kafka timestamp by default: the bound Kafka 4 itself puts
	// on how far a record's timestamp may be ahead of the broker's clock
	// (message.timestamp.after.max.ms). The bot stamps a message with
	// Discord's creation time and produces it after, so its event times are
	// behind their Kafka timestamps, by more after an outage.
	DefaultMaxEventTimeAhead = time.Hour
	// DefaultDrainTimeout bounds how long a stopping analyzer waits for the
	// batch in flight to write its output and commit.
	DefaultDrainTimeout = 10 * time.Second
)

// Config is the query the analyzer runs.
type Config struct {
	// Window is the window length, Slide how far consecutive windows start
	// apart (tumbling windows when equal), Watermark the event-time delay
	// after which late rows are dropped and windows closed.
	Window, Slide, Watermark time.Duration
	// GroupBy are the key columns, from GroupColumns, in output order.
	GroupBy []string
	// Mode is the output mode: which rows each batch emits.
	Mode window.Mode
	// Trigger is the processing-time interval: batches start at wall-clock
	// multiples of it. Ignored with AvailableNow.
	Trigger time.Duration
	// AvailableNow processes what the source holds when the query starts, in
	// batches, then stops (Spark's Trigger.AvailableNow).
	AvailableNow bool
	// DrainTimeout bounds the wait for the batch in flight on shutdown
	// (DefaultDrainTimeout when zero).
	DrainTimeout time.Duration
	// Dedup counts a message_id once within the watermark horizon: with a
	// Durable source, a record whose message_id was counted before and whose
	// windows are still open is dropped as a duplicate. Records without a
	// message_id are never de-duplicated. Without a Durable source it has no
	// effect (there is no state to remember ids in).
	Dedup bool
	// MaxEventTimeAhead is how far a record's message_timestamp may be
	// ahead of the record's Kafka timestamp: a record further ahead is a bad
	// record (ReasonFutureTimestamp), so that one implausible timestamp
	// cannot move the watermark past every record to come. Records whose
	// Kafka timestamp is unknown are not judged. 0 turns the check off
	// (Spark's behaviour: every valid timestamp moves the watermark).
	MaxEventTimeAhead time.Duration
	// MaxKeyBytes bounds a record's group-by values, as JSON strings
	// (escaped) together: the window rows, partial counts and results rows
	// that hold them must fit in the records Kafka accepts (KeyLimit). A
	// record with longer values is a bad record (ReasonKeyTooLong). 0: no
	// bound (nothing is stored in Kafka).
	MaxKeyBytes int
}

// Validate checks the query before anything starts. Its errors name the
// setting at fault and say what is accepted.
func (c Config) Validate() error {
	var errs []error
	if err := ValidateGroupBy(c.GroupBy); err != nil {
		errs = append(errs, err)
	}
	if !c.AvailableNow && c.Trigger <= 0 {
		errs = append(errs, fmt.Errorf("trigger %v: must be positive, e.g. 5s", c.Trigger))
	}
	if c.MaxEventTimeAhead < 0 {
		errs = append(errs, fmt.Errorf("max event time ahead %v: must not be negative (0 turns the check off)", c.MaxEventTimeAhead))
	}
	if c.MaxKeyBytes < 0 {
		errs = append(errs, fmt.Errorf("max key bytes %d: must not be negative (0: no bound)", c.MaxKeyBytes))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("drain timeout %v: must not be negative", c.DrainTimeout))
	}
	// The window, slide and watermark are checked by the engine's own
	// configuration, once.
	if err := c.engineConfig().Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ValidateGroupBy checks a list of key columns: at least one, each known,
// none twice.
func ValidateGroupBy(cols []string) error {
	if len(cols) == 0 {
		return fmt.Errorf("group-by: no column given; use any of %s", strings.Join(groupColumns, ", "))
	}
	seen := map[string]bool{}
	for _, c := range cols {
		if !slices.Contains(groupColumns, c) {
			return fmt.Errorf("group-by: unknown column %q; use any of %s", c, strings.Join(groupColumns, ", "))
		}
		if seen[c] {
			return fmt.Errorf("group-by: column %q given twice", c)
		}
		seen[c] = true
	}
	return nil
}

func (c Config) engineConfig() window.Config {
	return window.Config{Window: c.Window, Slide: c.Slide, Watermark: c.Watermark, Mode: c.Mode, Keys: len(c.GroupBy)}
}

func (c Config) drainTimeout() time.Duration {
	if c.DrainTimeout == 0 {
		return DefaultDrainTimeout
	}
	return c.DrainTimeout
}
