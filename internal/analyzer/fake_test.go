package analyzer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/window"
)

// fakeSource is a one-partition topic in memory. avail says how many of
// records are "produced"; plans follow the same rules as KafkaSource's.
type fakeSource struct {
	topic   string
	records []Record
	avail   int
	limit   int64
	pos     int64

	plans   []Plan
	commits []int64
	// onPlan runs at the start of each Plan with its 0-based call number.
	onPlan func(call int)
	// onRead runs before a plan's records are read; a non-nil error aborts
	// the read after the first n records.
	onRead func(call int) (n int, err error)
	reads  int
}

func (f *fakeSource) add(values ...[]byte) {
	for _, v := range values {
		off := int64(len(f.records))
		f.records = append(f.records, Record{Topic: f.topic, Partition: 0, Offset: off, Key: []byte(fmt.Sprint("k", off)), Value: v})
	}
}

func (f *fakeSource) Plan(ctx context.Context) (Plan, error) {
	if f.onPlan != nil {
		f.onPlan(len(f.plans))
	}
	if err := ctx.Err(); err != nil {
		return Plan{}, err
	}
	to := rateLimit(f.limit, map[int32]int64{0: f.pos}, map[int32]int64{0: int64(f.avail)})[0]
	var p Plan
	if to > f.pos {
		p.Ranges = []Range{{Topic: f.topic, Partition: 0, From: f.pos, To: to}}
	}
	p.Lag = int64(f.avail) - to
	f.plans = append(f.plans, p)
	return p, nil
}

func (f *fakeSource) Read(ctx context.Context, p Plan, fn func(*Record)) error {
	call := f.reads
	f.reads++
	for _, r := range p.Ranges {
		recs := f.records[r.From:r.To]
		if f.onRead != nil {
			if n, err := f.onRead(call); err != nil {
				for i := range recs[:n] {
					fn(&recs[i])
				}
				return err
			}
		}
		for i := range recs {
			rec := recs[i]
			fn(&rec)
		}
	}
	return nil
}

func (f *fakeSource) Commit(ctx context.Context, p Plan) error {
	for _, r := range p.Ranges {
		f.pos = r.To
	}
	f.commits = append(f.commits, f.pos)
	return nil
}

// fakeClock is a wall clock that jumps to wherever the analyzer sleeps to.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, t)
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

// recordingOutput keeps every batch it is given.
type recordingOutput struct {
	batches []window.Batch
	err     error
	onWrite func(b *window.Batch)
}

func (o *recordingOutput) WriteBatch(ctx context.Context, b *window.Batch) error {
	if o.onWrite != nil {
		o.onWrite(b)
	}
	if o.err != nil {
		return o.err
	}
	c := *b
	c.Rows = append([]window.Row(nil), b.Rows...)
	o.batches = append(o.batches, c)
	return nil
}

// recordingDeadLetters keeps what is sent and flushed.
type recordingDeadLetters struct {
	sent     []chat.BadRecord
	flushed  int
	flushErr error
}

func (d *recordingDeadLetters) Send(_ context.Context, r chat.BadRecord) { d.sent = append(d.sent, r) }
func (d *recordingDeadLetters) Flush(context.Context) error {
	if d.flushErr != nil {
		return d.flushErr
	}
	d.flushed = len(d.sent)
	return nil
}

// msg encodes a create record by author at ts ("2025-11-07 18:00:05").
func msg(author, ts string) []byte {
	t, err := chat.ParseTimestamp(ts)
	if err != nil {
		panic(err)
	}
	b, err := chat.Encode(&chat.Message{Kind: chat.KindCreate, MessageID: "m-" + author + ts, ChannelID: "c1",
		AuthorID: chat.Ptr("id-" + author), AuthorName: chat.Ptr(author), Content: chat.Ptr("hi"), Timestamp: t})
	if err != nil {
		panic(err)
	}
	return b
}
