package sink

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/chat"
)

// Header names of the records DeadLetter writes. The last three are only
// on a record cut down to fit the topic: truncated is "true", and the
// original sizes of the key and value are in bytes.
const (
	HeaderReason             = "reason"
	HeaderField              = "field"
	HeaderError              = "error"
	HeaderSourceTopic        = "source_topic"
	HeaderSourcePartition    = "source_partition"
	HeaderSourceOffset       = "source_offset"
	HeaderTruncated          = "truncated"
	HeaderOriginalKeyBytes   = "original_key_bytes"
	HeaderOriginalValueBytes = "original_value_bytes"
)

// DeadLetter copies bad records to a Kafka topic, unchanged (same key and
// value), with headers saying why they were rejected and where they came
// from. A record larger than the topic accepts is cut down to fit, with
// headers saying so and how large it was: a bad record must never fail the
// batch that meets it (the batch would fail again at every restart). Send
// produces asynchronously; Flush waits for every record sent since the last
// Flush and returns the first failure.
type DeadLetter struct {
	cl       *kgo.Client
	topic    string
	maxBytes int

	mu  sync.Mutex
	err error // first failure since the last Flush
}

// maxErrorHeader bounds the error header: an error quoting a value is cut.
const maxErrorHeader = 1024

// NewDeadLetter returns a DeadLetter producing to topic with cl. maxBytes is
// the largest record (key, value and headers) the topic accepts from cl
// (analyzer.RecordLimit reads it from the cluster); 0 means no limit.
func NewDeadLetter(cl *kgo.Client, topic string, maxBytes int) *DeadLetter {
	return &DeadLetter{cl: cl, topic: topic, maxBytes: maxBytes}
}

// Send starts producing r. Its outcome is reported by the next Flush.
func (d *DeadLetter) Send(ctx context.Context, r chat.BadRecord) {
	rec := d.record(r)
	d.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
		if err != nil {
			d.mu.Lock()
			if d.err == nil {
				d.err = fmt.Errorf("dead-letter topic %s: record from %s/%d@%d: %w", d.topic, r.Topic, r.Partition, r.Offset, err)
			}
			d.mu.Unlock()
		}
	})
}

// Flush waits until every record sent so far is acknowledged, or ctx ends.
// It returns the first produce failure since the previous Flush. It flushes
// the whole client, so records other sinks produced with it are flushed too.
func (d *DeadLetter) Flush(ctx context.Context) error {
	if err := d.cl.Flush(ctx); err != nil {
		return errors.Join(fmt.Errorf("dead-letter topic %s: %w", d.topic, err), d.takeErr())
	}
	return d.takeErr()
}

func (d *DeadLetter) takeErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.err
	d.err = nil
	return err
}

// record is the dead-letter copy of r, cut down to d.maxBytes.
func (d *DeadLetter) record(r chat.BadRecord) *kgo.Record {
	errLimit := maxErrorHeader
	if d.maxBytes > 0 {
		errLimit = min(errLimit, d.maxBytes/8)
	}
	rec := &kgo.Record{
		Topic: d.topic,
		Key:   r.Key,
		Value: r.Value,
		Headers: []kgo.RecordHeader{
			{Key: HeaderReason, Value: []byte(r.Reason)},
			{Key: HeaderField, Value: []byte(r.Field)},
			{Key: HeaderError, Value: cutText(r.Error, errLimit)},
			{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
			{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
			{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
		},
	}
	if d.maxBytes <= 0 {
		return rec
	}
	const added = 128 // the three headers of a cut record
	budget := d.maxBytes - headerBytes(rec.Headers) - added
	if len(r.Key)+len(r.Value) <= budget+added {
		return rec
	}
	budget = max(budget, 0)
	// The key keeps what the value leaves, and at least a quarter.
	keyKeep := min(len(r.Key), max(budget-len(r.Value), budget/4))
	valueKeep := min(len(r.Value), budget-keyKeep)
	rec.Key = r.Key[:keyKeep:keyKeep]
	if r.Value != nil {
		rec.Value = r.Value[:valueKeep:valueKeep]
	}
	rec.Headers = append(rec.Headers,
		kgo.RecordHeader{Key: HeaderTruncated, Value: []byte("true")},
		kgo.RecordHeader{Key: HeaderOriginalKeyBytes, Value: strconv.AppendInt(nil, int64(len(r.Key)), 10)},
		kgo.RecordHeader{Key: HeaderOriginalValueBytes, Value: strconv.AppendInt(nil, int64(len(r.Value)), 10)})
	return rec
}

func headerBytes(hs []kgo.RecordHeader) int {
	n := 0
	for _, h := range hs {
		n += len(h.Key) + len(h.Value) + 10 // two varint lengths
	}
	return n
}

// cutText returns s, or its first bytes (on a character boundary) and a
// note of its length when it is longer than limit.
func cutText(s string, limit int) []byte {
	if len(s) <= limit {
		return []byte(s)
	}
	note := fmt.Sprintf("... (%d bytes)", len(s))
	cut := max(limit-len(note), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return []byte(s[:cut] + note)
}
