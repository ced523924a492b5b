package analyzer

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/window"
)

// ReasonNullValue is the bad-record reason of a record whose value is null
// (a tombstone). Spark's from_json turns it into a row of nulls that the
// null-timestamp filter drops silently; we count it like any bad record.
const ReasonNullValue = "null_value"

// ReasonFutureTimestamp is the bad-record reason of a record whose
// message_timestamp is further ahead of its Kafka timestamp than
// Config.MaxEventTimeAhead allows. Spark would count it and move the
// watermark to it, dropping as late every record behind it.
const ReasonFutureTimestamp = "future_timestamp"

// ReasonKeyTooLong is the bad-record reason of a record whose group-by
// values are too long to store (Config.MaxKeyBytes): the window rows and
// results rows holding them would exceed what Kafka accepts, and fail
// every batch that tried to write them.
const ReasonKeyTooLong = "key_too_long"

// ReasonMessageIDTooLong is the bad-record reason, with de-duplication, of
// a record whose message_id is longer than maxMessageIDBytes: its id could
// not be remembered (stored) reliably, and a Discord id is 17-20 digits.
const ReasonMessageIDTooLong = "message_id_too_long"

// maxMessageIDBytes bounds a message_id that de-duplication remembers.
const maxMessageIDBytes = 4096

// keyField says where a group-by column lives in a chat.Projection.
type keyField struct {
	has uint8
	get func(p *chat.Projection) string
}

var keyFields = map[string]keyField{
	chat.FieldAuthorName: {chat.HasAuthorName, func(p *chat.Projection) string { return p.AuthorName }},
	chat.FieldAuthorID:   {chat.HasAuthorID, func(p *chat.Projection) string { return p.AuthorID }},
	chat.FieldChannelID:  {chat.HasChannelID, func(p *chat.Projection) string { return p.ChannelID }},
	chat.FieldGuildID:    {chat.HasGuildID, func(p *chat.Projection) string { return p.GuildID }},
}

// batchStats counts what happened to the records of one batch.
type batchStats struct {
	records       int64            // data records read
	counted       int64            // records counted in a window (here or by the instance owning their key)
	skipped       map[string]int64 // records not counted, by event kind
	bad           map[string]int64 // bad records, by reason
	duplicates    int64            // records whose message_id was counted before
	late          int64            // records too late for every window (own ones and other instances')
	repartitioned int64            // records sent to the instance owning their key
	fromOthers    int64            // records other instances sent here
	lateElsewhere int64            // records of the batch other instances found too late for every window

	// oldestLate is the earliest event time of a record too late for at
	// least one of its windows (valid when hasLate).
	oldestLate int64
	hasLate    bool

	wmLate  int64 // the watermark the batch drops late rows against
	corrupt error // an internal record that could not be read

	// The latest event time among the batch's own records counted (here
	// or elsewhere), and where that record is: what the watermark moves to.
	latest    int64
	latestAt  recordPlace
	hasLatest bool

	// Where the batch's time went (for the debug log).
	readTook, writeTook, commitTook time.Duration
}

// recordPlace says where a record is, for messages about it.
type recordPlace struct {
	topic     string
	partition int32
	offset    int64
	timestamp time.Time // the Kafka record's; zero when unknown
}

func (p *recordPlace) String() string {
	s := fmt.Sprintf("%s/%d@%d", p.topic, p.partition, p.offset)
	if !p.timestamp.IsZero() {
		s += " (Kafka timestamp " + p.timestamp.UTC().Format("2006-01-02 15:04:05.000") + ")"
	}
	return s
}

func newBatchStats() *batchStats {
	return &batchStats{skipped: map[string]int64{}, bad: map[string]int64{}}
}

func (s *batchStats) badTotal() int64 {
	var n int64
	for _, c := range s.bad {
		n += c
	}
	return n
}

// badSummary is the one-line stderr summary of a batch's bad records, or ""
// when it had none: "batch 3: 4 bad records (bad_timestamp=1, malformed_json=3)".
func (s *batchStats) badSummary(batchID int64) string {
	total := s.badTotal()
	if total == 0 {
		return ""
	}
	reasons := make([]string, 0, len(s.bad))
	for r := range s.bad {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = fmt.Sprintf("%s=%d", r, s.bad[r])
	}
	noun := "records"
	if total == 1 {
		noun = "record"
	}
	return fmt.Sprintf("batch %d: %d bad %s (%s)", batchID, total, noun, strings.Join(parts, ", "))
}

// classify returns the reason and field of a decode error.
func classify(err error) (reason, field string) {
	var fe *chat.FieldError
	if errors.As(err, &fe) {
		return string(fe.Reason), fe.Field
	}
	return string(chat.ReasonMalformedJSON), ""
}

// keysOf fills keys (len(cols)) from a decoded record: a column that is
// absent or null becomes an invalid (null) value, its own group as in Spark.
func keysOf(p *chat.Projection, fields []keyField, keys []window.Value) {
	for i, f := range fields {
		if p.Has&f.has != 0 {
			keys[i] = window.Value{S: f.get(p), Valid: true}
		} else {
			keys[i] = window.Value{}
		}
	}
}

// noteLatest remembers the record with the batch's latest event time.
func (s *batchStats) noteLatest(r *Record, ts int64) {
	if s.hasLatest && ts <= s.latest {
		return
	}
	s.latest, s.hasLatest = ts, true
	s.latestAt = recordPlace{topic: r.Topic, partition: r.Partition, offset: r.Offset, timestamp: r.Timestamp}
}

// formatMicros formats an event time (Unix µs) as the wire format does.
func formatMicros(us int64) string {
	return time.UnixMicro(us).UTC().Format("2006-01-02 15:04:05.000")
}

// formatSpan formats a positive span of µs, which may be too long for a
// time.Duration: in years beyond a thousand hours.
func formatSpan(us int64) string {
	if us < int64(1000*time.Hour/time.Microsecond) {
		return (time.Duration(us) * time.Microsecond).String()
	}
	const year = int64(365.2425 * 24 * float64(time.Hour/time.Microsecond))
	if us < year {
		return fmt.Sprintf("%d days", us/int64(24*time.Hour/time.Microsecond))
	}
	return fmt.Sprintf("%d years", us/year)
}

// longKey returns the index of the longest of keys and the length of keys as
// JSON strings together, when that is over limit (else -1, 0): how long a
// key tuple is in the records that store it.
func longKey(keys []window.Value, limit int, buf *[]byte) (int, int) {
	raw := 0
	for _, k := range keys {
		raw += len(k.S)
	}
	if 6*raw+2*len(keys) <= limit {
		return -1, 0 // even escaping every byte as \u00XX fits
	}
	total, longest, at := 0, -1, -1
	for i, k := range keys {
		n := 4 // null
		if k.Valid {
			*buf = chat.AppendJSONString((*buf)[:0], k.S)
			n = len(*buf)
		}
		total += n
		if n > longest {
			longest, at = n, i
		}
	}
	if cap(*buf) > 1<<20 {
		*buf = nil // do not keep a megabyte for the next long key
	}
	if total <= limit {
		return -1, 0
	}
	return at, total
}

// noteLate remembers the earliest event time too late for a window.
func (s *batchStats) noteLate(ts int64) {
	if !s.hasLate || ts < s.oldestLate {
		s.oldestLate, s.hasLate = ts, true
	}
}
