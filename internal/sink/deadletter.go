package sink

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BadRecord is an input record that could not be used, with why.
type BadRecord struct {
	// Where the record was read.
	Topic     string
	Partition int32
	Offset    int64
	// The record as read; Value is nil for a tombstone.
	Key, Value []byte
	// Reason is the stable reason code (malformed_json, missing_field,
	// wrong_type, bad_timestamp, bad_value, null_value); Field the JSON
	// field at fault ("" for the record as a whole); Error the message.
	Reason, Field, Error string
}

// Header names of the records DeadLetter writes.
const (
	HeaderReason          = "reason"
	HeaderField           = "field"
	HeaderError           = "error"
	HeaderSourceTopic     = "source_topic"
	HeaderSourcePartition = "source_partition"
	HeaderSourceOffset    = "source_offset"
)

// DeadLetter copies bad records to a Kafka topic, unchanged (same key and
// value), with headers saying why they were rejected and where they came
// from. Send produces asynchronously; Flush waits for every record sent
// since the last Flush and returns the first failure.
type DeadLetter struct {
	cl    *kgo.Client
	topic string

	mu  sync.Mutex
	err error // first failure since the last Flush
}

// NewDeadLetter returns a DeadLetter producing to topic with cl (a client
// that is not consuming in a transaction).
func NewDeadLetter(cl *kgo.Client, topic string) *DeadLetter {
	return &DeadLetter{cl: cl, topic: topic}
}

// Send starts producing r. Its outcome is reported by the next Flush.
func (d *DeadLetter) Send(ctx context.Context, r BadRecord) {
	rec := &kgo.Record{
		Topic: d.topic,
		Key:   r.Key,
		Value: r.Value,
		Headers: []kgo.RecordHeader{
			{Key: HeaderReason, Value: []byte(r.Reason)},
			{Key: HeaderField, Value: []byte(r.Field)},
			{Key: HeaderError, Value: []byte(r.Error)},
			{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
			{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
			{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
		},
	}
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
