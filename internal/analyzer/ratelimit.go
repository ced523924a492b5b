package analyzer

import (
	"math"
	"time"
)

// rateLimit caps the offsets a batch reads at limit in total, spread over the
// partitions in proportion to what each has available, exactly as Spark's
// Kafka source does for maxOffsetsPerTrigger (KafkaMicroBatchStream.rateLimit
// in spark-sql-kafka-0-10): a partition gets floor(limit*size/total) offsets,
// or 1 when that share is below 1 ("don't completely starve small
// partitions"), never past its end. With one partition, batch N of a topic
// read from offset 0 is exactly the offsets [N*limit, (N+1)*limit).
//
// from holds the next offset to read per partition, until the end offsets;
// the result holds, for every partition of until, the end of the batch's
// range (never before from). limit <= 0 means no cap.
func rateLimit(limit int64, from, until map[int32]int64) map[int32]int64 {
	out := make(map[int32]int64, len(until))
	sizes := make(map[int32]int64, len(until))
	var total int64
	for p, end := range until {
		begin, ok := from[p]
		if !ok {
			begin = end
		}
		out[p] = max(end, begin)
		if size := end - begin; size > 0 {
			sizes[p] = size
			total += size
		}
	}
	if limit <= 0 || total < 1 {
		return out
	}
	for p, size := range sizes {
		begin := from[p]
		// Spark computes the share in doubles: limit * (size / total).
		prorate := float64(limit) * (float64(size) / float64(total))
		var n int64
		switch {
		case prorate < 1:
			n = int64(math.Ceil(prorate))
		case prorate >= math.MaxInt64:
			n = math.MaxInt64 // the JVM's double-to-long conversion saturates
		default:
			n = int64(math.Floor(prorate))
		}
		off := int64(math.MaxInt64)
		if n <= math.MaxInt64-begin {
			off = begin + n
		}
		out[p] = min(until[p], off)
	}
	return out
}

// nextTrigger returns when the processing-time trigger fires after a batch
// that started at t: the next multiple of interval since the Unix epoch, as
// Spark's ProcessingTimeExecutor.nextBatchTime computes it. A batch that runs
// longer than the interval is followed at once by the next one.
func nextTrigger(t time.Time, interval time.Duration) time.Time {
	n := t.UnixNano()
	iv := int64(interval)
	next := n/iv*iv + iv
	if n < 0 && n%iv != 0 {
		next -= iv
	}
	return time.Unix(0, next)
}
