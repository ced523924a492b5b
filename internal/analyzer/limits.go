package analyzer

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// recordOverhead is room left around a record's key, value and headers for
// what a batch of one record adds on the wire (the batch header, 61 bytes;
// the record's varint lengths, timestamp and offset deltas; the topic and
// partition of the request, which franz-go counts against its batch limit
// too), with a wide margin.
const recordOverhead = 1024

// RecordLimit returns the largest record (key, value and headers, as
// produced, before compression) that cl can write to every one of topics:
// the least of the topics' max.message.bytes, the brokers'
// message.max.bytes and the client's own batch limit
// (kgo.ProducerBatchMaxBytes, 1,000,012 bytes unless set), less
// recordOverhead and the longest topic name. The limits are read from the
// cluster (DescribeConfigs), not assumed.
func RecordLimit(ctx context.Context, cl *kgo.Client, topics ...string) (int, error) {
	limit := int64(1 << 30)
	if v, ok := cl.OptValue(kgo.ProducerBatchMaxBytes).(int32); ok && v > 0 {
		limit = int64(v)
	}
	adm := kadm.NewClient(cl)
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		return 0, fmt.Errorf("list brokers: %w", err)
	}
	rcs, err := adm.DescribeBrokerConfigs(ctx, brokers.NodeIDs()...)
	if err != nil {
		return 0, fmt.Errorf("describe the brokers' configs: %w", err)
	}
	for _, rc := range rcs {
		if n, err := configBytes(rc, "message.max.bytes"); err != nil {
			return 0, err
		} else if n > 0 {
			limit = min(limit, n)
		}
	}
	longest := 0
	if len(topics) > 0 {
		rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
		if err != nil {
			return 0, fmt.Errorf("describe the configs of %v: %w", topics, err)
		}
		for _, rc := range rcs {
			n, err := configBytes(rc, "max.message.bytes")
			if err != nil {
				return 0, err
			}
			if n > 0 {
				limit = min(limit, n)
			}
			longest = max(longest, len(rc.Name))
		}
	}
	limit -= int64(recordOverhead + longest)
	if limit < 1024 {
		return 0, fmt.Errorf("the topics %v accept records of at most %d bytes, too small for the analyzer's records: raise their max.message.bytes", topics, limit+int64(recordOverhead+longest))
	}
	return int(limit), nil
}

// configBytes reads a size from a described resource, 0 when absent.
func configBytes(rc kadm.ResourceConfig, key string) (int64, error) {
	if rc.Err != nil {
		return 0, fmt.Errorf("describe the configs of %s: %w", rc.Name, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key != key || c.Value == nil {
			continue
		}
		n, err := strconv.ParseInt(*c.Value, 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%s of %s is %q, not a positive number of bytes", key, rc.Name, *c.Value)
		}
		return n, nil
	}
	return 0, nil
}

// KeyLimit returns the longest group-by key tuple (its values as JSON
// strings, escaped, together) whose records fit in recordLimit bytes: a
// row of the results topic holds the tuple twice (in its key and in its
// value), every other record the analyzer stores at most once.
func KeyLimit(recordLimit int) int {
	return max((recordLimit-recordOverhead)/2, 0)
}
