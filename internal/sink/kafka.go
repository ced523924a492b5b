package sink

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/window"
)

// ResultsTopicConfigs are the topic settings a results topic is created
// with: compacted, so that it keeps the latest value of every row.
var ResultsTopicConfigs = map[string]string{"cleanup.policy": "compact"}

// KafkaResults writes every emitted row to a Kafka topic. The record key
// identifies the row (window start and end, then the key columns) so that a
// compacted topic keeps the latest count of every (window, key); the value
// is the row's JSON line, exactly as JSONLines writes it.
//
// Key example:
//
//	{"window_start":"2025-11-07T17:59:30Z","window_end":"2025-11-07T18:00:30Z","author_name":"alice"}
type KafkaResults struct {
	cl       *kgo.Client
	topic    string
	keyNames []string
	buf      bytes.Buffer
	line     *JSONLines
}

// NewKafkaResults returns a sink producing to topic with cl. keyNames are
// the group-by columns, in the order of window.Row.Keys. With a
// transactional client the rows of a batch are produced in the transaction
// open when WriteBatch runs (the analyzer's durable state opens one per
// batch), so read-committed consumers see them only once it commits.
func NewKafkaResults(cl *kgo.Client, topic string, keyNames []string) *KafkaResults {
	k := &KafkaResults{cl: cl, topic: topic, keyNames: keyNames}
	k.line = NewJSONLines(&k.buf, keyNames)
	return k
}

// NewKafkaResultsColumns is NewKafkaResults for a query's own columns: the
// values are NewJSONLinesColumns' lines.
func NewKafkaResultsColumns(cl *kgo.Client, topic string, cols Columns) *KafkaResults {
	k := &KafkaResults{cl: cl, topic: topic, keyNames: cols.Keys}
	k.line = NewJSONLinesColumns(&k.buf, cols)
	return k
}

// WriteBatch produces one record per row of b and returns once all are
// acknowledged by the brokers (acks=all), or the first failure.
func (k *KafkaResults) WriteBatch(ctx context.Context, b *window.Batch) error {
	if len(b.Rows) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, 0, len(b.Rows))
	for i := range b.Rows {
		row := &b.Rows[i]
		k.buf.Reset()
		one := window.Batch{ID: b.ID, Rows: b.Rows[i : i+1]}
		if err := k.line.WriteBatch(ctx, &one); err != nil {
			return fmt.Errorf("results topic %s: encode row: %w", k.topic, err)
		}
		value := bytes.TrimRight(k.buf.Bytes(), "\n")
		recs = append(recs, &kgo.Record{
			Topic: k.topic,
			Key:   RowKey(row, k.keyNames),
			Value: bytes.Clone(value),
		})
	}
	if err := k.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("results topic %s: %w", k.topic, err)
	}
	return nil
}

// RowKey is the results-topic key of a row: a JSON object with window_start
// and window_end (RFC 3339, UTC) and then each key column (null for a null
// key), in the order of keyNames.
func RowKey(row *window.Row, keyNames []string) []byte {
	b := make([]byte, 0, 96)
	b = append(b, `{"window_start":"`...)
	b = time.UnixMicro(row.Start).UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","window_end":"`...)
	b = time.UnixMicro(row.End).UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	for i, name := range keyNames {
		b = append(b, ',')
		b = appendJSONString(b, name)
		b = append(b, ':')
		if i < len(row.Keys) && row.Keys[i].Valid {
			b = appendJSONString(b, row.Keys[i].S)
		} else {
			b = append(b, "null"...)
		}
	}
	return append(b, '}')
}
