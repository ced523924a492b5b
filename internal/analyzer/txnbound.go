package analyzer

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// A durable query's batch is one Kafka transaction, and the broker aborts a
// transaction left open longer than its timeout (--transaction-timeout; the
// broker notices within transaction.abort.timed.out.transaction.cleanup
// .interval.ms, 10 s by default). A replay batch reading millions of
// records can take longer than that. So a batch's input is bounded:
//
//   - without --max-records-per-batch, by what the batches before it show
//     fits in a third of the timeout: their offsets per second times that
//     third, and never fewer than boundFloor offsets (a live stream's
//     batches stay whole), which is also the first batch's bound;
//   - with --max-records-per-batch, by that cap exactly, as Spark's
//     maxOffsetsPerTrigger (the same batches at every replay);
//   - after a batch was aborted for time, in either case by what would have
//     fit, from that batch's own offsets and time, growing back at most
//     twofold per committed batch: the next attempt does not fail the same
//     way.
type batchBound struct {
	budget   time.Duration // a third of the transaction timeout
	learned  int64         // offsets that fit in budget, from the last committed batch; 0 before one
	timedOut bool          // a batch was aborted for time in this process
}

// boundFloor is the fewest input offsets the bound lets a batch read, while
// no batch was aborted for time: about a second of a 2-core machine's
// replay, and more than a live stream brings per trigger.
const boundFloor = 100_000

func newBatchBound(txnTimeout time.Duration) batchBound {
	return batchBound{budget: txnTimeout / 3}
}

// limit returns the cap on the input offsets of the next batch (0: none),
// given the user's --max-records-per-batch (0: none).
func (b *batchBound) limit(user int64) int64 {
	switch {
	case b.timedOut && user > 0:
		return min(user, b.learned)
	case b.timedOut:
		return b.learned
	case user > 0:
		return user
	}
	return max(b.learned, boundFloor)
}

// committed learns from a committed batch of offsets input offsets that
// kept its transaction open for took.
func (b *batchBound) committed(offsets int64, took time.Duration) {
	if offsets <= 0 || took <= 0 {
		return
	}
	fit := max(int64(float64(offsets)*float64(b.budget)/float64(took)), 1)
	if b.timedOut {
		fit = min(fit, 2*b.learned)
	}
	b.learned = fit
}

// abortedForTime learns from a batch of offsets input offsets whose
// transaction the broker aborted after took, and returns the new cap.
func (b *batchBound) abortedForTime(offsets int64, took time.Duration) int64 {
	fit := int64(1)
	if took > 0 {
		fit = int64(float64(offsets) * float64(b.budget) / float64(took))
	}
	// At most half the offsets that failed, so that the next attempt is
	// smaller even when the time went elsewhere (a slow output).
	b.learned = max(min(fit, offsets/2), 1)
	b.timedOut = true
	return b.learned
}

// epochError reports whether err is how Kafka answers a producer whose
// transaction it ended: the coordinator aborted it (timeout) and bumped the
// producer epoch, or another producer with the same transactional id took
// over.
func epochError(err error) bool {
	return errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.ProducerFenced) ||
		errors.Is(err, kerr.TransactionAbortable) || errors.Is(err, kerr.InvalidTxnState)
}

// TxnTimeoutError is a batch whose transaction stayed open longer than the
// transaction timeout, so that the broker aborted it. It wraps
// ErrRolledBack: the batch is run again, from the committed state, smaller.
type TxnTimeoutError struct {
	Took, Timeout time.Duration
	Offsets, Next int64 // the batch's input offsets; the cap of the next attempt
	Err           error
}

func (e *TxnTimeoutError) Error() string {
	return fmt.Sprintf("the batch's transaction was open %v, longer than the transaction timeout (%v), and Kafka aborted it (%v); its %d input offsets are read again in batches of at most %d",
		e.Took.Round(time.Millisecond), e.Timeout, e.Err, e.Offsets, e.Next)
}

func (e *TxnTimeoutError) Unwrap() []error { return []error{ErrRolledBack, e.Err} }

// Hint says what to change.
func (e *TxnTimeoutError) Hint() string {
	return "nothing is lost: the batch runs again in smaller batches. For larger batches, raise --transaction-timeout (up to the broker's transaction.max.timeout.ms, 15m by default)"
}
