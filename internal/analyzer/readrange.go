package analyzer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// holdPauseAfter is how many records polled ahead of the batch being read a
// partition may hold before its fetching pauses, until a Read leaves it
// fewer. Fetch
// responses give every partition about the same bytes while batch ranges
// follow each partition's backlog (as Spark spreads maxOffsetsPerTrigger),
// so without a pause the partitions whose range is complete would pile up
// records (and the decompressed fetch buffers they keep alive) while the
// batch waits for the slowest one.
var holdPauseAfter = 4096 // a variable for tests

// fetchMaxWait is how long the broker may hold a fetch that finds no new
// data (Kafka's fetch.max.wait.ms; franz-go's default is 5 s). A fetch held
// at the end of a partition delays the next one, which a batch may need (a
// partition resumed after a pause, the last records of a range): batches
// were seen to stall for the better part of 5 s at the end of the input.
const fetchMaxWait = 500 * time.Millisecond

// rangeReader reads the offset ranges of a plan from a group consumer's
// polls. Records polled beyond a partition's range, or for an owned
// partition the batch does not read, are held for the batches that read
// them; a partition holding holdPauseAfter records stops being fetched until
// a Read leaves it fewer. KafkaSource and KafkaState share it.
type rangeReader struct {
	mu *sync.Mutex // the owner's: guards held, paused and wake (its revoke callback drops held records)

	held   map[tp][]*kgo.Record
	paused map[tp]bool
	wake   context.CancelFunc // interrupts the poll of Read after a revoke
	polled bool               // records were polled and rebalancing is blocked
	rec    Record
}

func newRangeReader(mu *sync.Mutex) rangeReader {
	return rangeReader{mu: mu, held: map[tp][]*kgo.Record{}, paused: map[tp]bool{}}
}

// readHooks are what differs between the readers' owners.
type readHooks struct {
	cl  *kgo.Client
	log *slog.Logger
	// owned reports whether the partition is still owned (called with mu held).
	owned func(tp) bool
	// revoked is logged when a partition is revoked while its batch is read.
	revoked string
	// fetchErrors handles a poll's errors; it may drop ranges from need
	// (records lost to retention) and returns an error that fails the read.
	fetchErrors func(kgo.Fetches, map[tp]Range) error
	// repartition reports whether topic is the repartition topic.
	repartition func(topic string) bool
}

// forget drops what is held for t (revoked, or re-positioned). mu held.
func (rr *rangeReader) forget(t tp) { delete(rr.held, t) }

// interrupt wakes a Read waiting in a poll (a partition was revoked). mu held.
func (rr *rangeReader) interrupt() {
	if rr.wake != nil {
		rr.wake()
	}
}

// allowRebalance lets a rebalance blocked by a poll proceed: between
// batches, never while one is read.
func (rr *rangeReader) allowRebalance(cl *kgo.Client) {
	if rr.polled {
		cl.AllowRebalance()
		rr.polled = false
	}
}

// read calls fn for every data record of plan's ranges, in offset order
// within each partition, skipping transaction markers.
func (rr *rangeReader) read(ctx context.Context, plan Plan, h readHooks, fn func(*Record)) error {
	need := make(map[tp]Range, len(plan.Ranges))
	for _, r := range plan.Ranges {
		need[tp{r.Topic, r.Partition}] = r
	}
	// Records held from earlier polls come first; paused partitions that now
	// hold fewer than holdPauseAfter are fetched again.
	rr.mu.Lock()
	var early []*kgo.Record
	var complete []tp // partitions whose held records reach past the range
	for t, r := range need {
		recs := rr.held[t]
		i := 0
		for ; i < len(recs) && recs[i].Offset < r.To; i++ {
			if recs[i].Offset >= r.From {
				early = append(early, recs[i])
			}
		}
		if i < len(recs) {
			rr.held[t] = recs[i:]
			complete = append(complete, t)
		} else {
			delete(rr.held, t)
		}
	}
	if len(rr.paused) > 0 {
		resume := map[string][]int32{}
		for t := range rr.paused {
			if len(rr.held[t]) < holdPauseAfter {
				resume[t.topic] = append(resume[t.topic], t.p)
				delete(rr.paused, t)
			}
		}
		if len(resume) > 0 {
			h.cl.ResumeFetchPartitions(resume)
		}
	}
	rr.mu.Unlock()
	for _, rec := range early {
		rr.deliver(rec, need, h, fn)
	}
	for _, t := range complete {
		delete(need, t)
	}

	for len(need) > 0 {
		rctx, wake := context.WithCancel(ctx)
		rr.mu.Lock()
		rr.wake = wake
		for t := range need {
			if !h.owned(t) {
				h.log.Warn(h.revoked, "topic", t.topic, "partition", t.p)
				delete(need, t)
			}
		}
		rr.mu.Unlock()
		if len(need) == 0 {
			wake()
			break
		}
		var want int64
		for _, r := range need {
			want += r.To - r.From
		}
		fetches := h.cl.PollRecords(rctx, int(min(want, 1<<16)))
		wake() // a cancelled rctx (revoke) just loops to check ownership again
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rr.polled = true // rebalances wait until allowRebalance
		if err := h.fetchErrors(fetches, need); err != nil {
			return err
		}
		fetches.EachRecord(func(rec *kgo.Record) { rr.deliver(rec, need, h, fn) })
	}
	rr.mu.Lock()
	rr.wake = nil
	rr.mu.Unlock()
	return nil
}

// deliver hands rec to fn when it belongs to the batch being read, holds it
// for a later batch when it is beyond, and marks partitions complete.
func (rr *rangeReader) deliver(rec *kgo.Record, need map[tp]Range, h readHooks, fn func(*Record)) {
	t := tp{rec.Topic, rec.Partition}
	r, ok := need[t]
	switch {
	case ok && rec.Offset < r.From:
		return // already processed
	case ok && rec.Offset >= r.To, !ok:
		rr.mu.Lock()
		if h.owned(t) {
			rr.held[t] = append(rr.held[t], rec)
			if len(rr.held[t]) >= holdPauseAfter && !rr.paused[t] {
				rr.paused[t] = true
				h.cl.PauseFetchPartitions(map[string][]int32{t.topic: {t.p}})
			}
		}
		rr.mu.Unlock()
		if ok {
			delete(need, t)
		}
		return
	}
	if !rec.Attrs.IsControl() {
		rr.rec = Record{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp, Key: rec.Key, Value: rec.Value,
			Repartitioned: h.repartition != nil && h.repartition(rec.Topic)}
		fn(&rr.rec)
	}
	if rec.Offset >= r.To-1 {
		delete(need, t)
	}
}

// fetchTrouble handles the errors of a group reader's polls (KafkaSource's
// and KafkaState's): data loss (records gone before they were read) is
// logged and the range moves on; the client unable to reach Kafka is waited
// for, logged at most every 5 s, and fails the read once it has lasted
// giveUpAfter (never when 0); anything else fails the read.
type fetchTrouble struct {
	log         *slog.Logger
	giveUpAfter time.Duration
	// severalTopics: the reader reads more than the topic its log names,
	// so a data-loss warning names the topic too.
	severalTopics bool
	said          time.Time // the last warning about Kafka being unreachable
	since         time.Time // since when it has been (zero: it is not)
}

// check is readHooks.fetchErrors: it may drop from need the ranges whose
// records are lost to retention.
func (f *fetchTrouble) check(fetches kgo.Fetches, need map[tp]Range) error {
	var errs []error
	transient := false
	fetches.EachError(func(topic string, p int32, err error) {
		var loss *kgo.ErrDataLoss
		switch {
		case errors.As(err, &loss):
			args := []any{"partition", p, "consumed_to", loss.ConsumedTo, "reset_to", loss.ResetTo}
			if f.severalTopics {
				args = append([]any{"topic", topic}, args...)
			}
			f.log.Warn("records lost before they were read", args...)
			if r, ok := need[tp{topic, p}]; ok && loss.ResetTo >= r.To {
				delete(need, tp{topic, p})
			}
		case topic == "":
			// The client's own trouble (the group session cannot be joined
			// while Kafka is unreachable): it keeps trying; a partition
			// lost meanwhile is revoked, which ends its read.
			transient = true
			if f.since.IsZero() {
				f.since = time.Now()
			} else if f.giveUpAfter > 0 && time.Since(f.since) > f.giveUpAfter {
				errs = append(errs, fmt.Errorf("Kafka unreachable for %v: %w", f.giveUpAfter, err))
			}
			if time.Since(f.said) > 5*time.Second {
				f.said = time.Now()
				f.log.Warn("Kafka unreachable while reading; waiting", "err", err)
			}
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			// our own wake-up or stop
		case errors.Is(err, kgo.ErrClientClosed):
			errs = append(errs, errors.New("kafka client closed"))
		default:
			errs = append(errs, fmt.Errorf("fetch %s/%d: %w", topic, p, err))
		}
	})
	if transient && len(errs) == 0 && fetches.NumRecords() == 0 {
		time.Sleep(200 * time.Millisecond) // no busy loop while the client recovers
	}
	return errors.Join(errs...)
}

// waitAssigned waits until the group has assigned the reader its partitions
// (assigned is closed), saying every 15 s that it still waits (still), and
// failing with what failed reports (checked then; nil: nothing can fail).
func waitAssigned(ctx context.Context, assigned <-chan struct{}, log *slog.Logger, still string, failed func() error) error {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-assigned:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if failed != nil {
				if err := failed(); err != nil {
					return err
				}
			}
			log.Warn(still)
		}
	}
}

// pollErrors is the error of a poll by a reader outside the group (the
// state topics read back, the leader's repartition reader): every fetch
// error but its own deadline or cancellation.
func pollErrors(fs kgo.Fetches) error {
	var errs []error
	fs.EachError(func(topic string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("read %s/%d: %w", topic, p, err))
		}
	})
	return errors.Join(errs...)
}
