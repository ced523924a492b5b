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
	counted       int64            // records counted (here or by the instance owning their key)
	skipped       map[string]int64 // records not counted, by event kind
	bad           map[string]int64 // bad records, by reason
	duplicates    int64            // records whose message_id was counted before
	lateRecords   int64            // records dropped before the engine: too late for every window
	repartitioned int64            // records sent to the instance owning their key
	fromOthers    int64            // records other instances sent here

	wmLate  int64 // the watermark the batch drops late rows against
	corrupt error // an internal record that could not be read

	// Where the batch's time went (for the debug log).
	readTook, writeTook, commitTook time.Duration
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
