package analyzer

// Ending KafkaState's batches: the transaction each batch writes in, its
// commit (state offsets, group offsets, the plan record), rollback and abort,
// and the errors that say why a transaction could not end.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Begin implements Durable.
func (s *KafkaState) Begin(ctx context.Context) error {
	if err := s.sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	s.trouble.since = time.Time{}
	s.inTxn = true
	s.began = time.Now()
	s.writeMu.Lock()
	s.writeErr = nil
	s.writeMu.Unlock()
	return nil
}

// Write implements Durable.
func (s *KafkaState) Write(ctx context.Context, recs ...StateRecord) {
	for _, r := range recs {
		rec := &kgo.Record{Topic: s.names[r.Topic], Partition: r.Partition, Key: r.Key, Value: r.Value}
		s.cl.Produce(ctx, rec, s.produced)
	}
}

func (s *KafkaState) produced(r *kgo.Record, err error) {
	if err == nil {
		return
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.writeErr == nil {
		s.writeErr = fmt.Errorf("write %s/%d: %w", r.Topic, r.Partition, err)
	}
}

// Commit implements Source: it records the next offset of every owned
// partition with its state, commits the same offsets to the group, and
// commits the transaction. It returns ErrRolledBack when the transaction had
// to be rolled back (the group rebalanced); the next plan then reloads
// every owned partition.
func (s *KafkaState) Commit(ctx context.Context, plan Plan) error {
	if !s.inTxn {
		return errors.New("commit without a transaction")
	}
	s.mu.Lock()
	next := maps.Clone(s.pos)
	s.mu.Unlock()
	for _, r := range plan.Ranges {
		if _, owned := next[tp{r.Topic, r.Partition}]; owned {
			next[tp{r.Topic, r.Partition}] = r.To
		} else if plan.Role != RoleAlone {
			// A batch of a plan that every instance follows commits all
			// its ranges or nothing: the next plan starts where this one
			// ends (revoked after planning, before the transaction began,
			// the group session cannot tell).
			return s.rollBack(ctx, fmt.Errorf("%s/%d was revoked while its batch ran", r.Topic, r.Partition))
		}
	}
	for t, o := range next {
		s.Write(ctx, StateRecord{Topic: s.stateTopicOf(t.topic), Partition: t.p, Key: []byte(KeyOffset), Value: strconv.AppendInt(nil, o, 10)})
	}
	// The shares of the batch committed here (coordinate.go).
	shares := map[int32]bool{}
	if plan.Role != RoleAlone {
		for _, r := range plan.Ranges {
			if r.Topic == s.cfg.Topic {
				shares[r.Partition] = true
				s.Write(ctx, StateRecord{Topic: InputState, Partition: r.Partition, Key: []byte(keyBatch), Value: strconv.AppendInt(nil, plan.Batch, 10)})
			}
		}
	}
	if plan.publish != nil {
		s.Write(ctx, StateRecord{Topic: Batches, Partition: 0, Key: []byte(keyPlan), Value: plan.publish})
	}
	// The broker aborts a transaction open longer than its timeout: a
	// flush that takes longer (Kafka unreachable) cannot commit anyway.
	fctx, cancel := context.WithTimeout(ctx, s.cfg.TransactionTimeout+10*time.Second)
	err := s.cl.Flush(fctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return s.abortWith(ctx, fmt.Errorf("write the batch: %w", err))
		}
		return s.rollBack(ctx, fmt.Errorf("write the batch: %w", err))
	}
	s.writeMu.Lock()
	werr := s.writeErr
	s.writeMu.Unlock()
	if werr != nil {
		if refusedForGood(werr) {
			// Running the batch again would write the same records.
			return s.abortWith(ctx, &WriteRefusedError{Err: werr})
		}
		return s.rollBack(ctx, werr)
	}
	// The group's offsets for exactly this batch, for every input partition
	// owned (so that an instance that lost its partitions without noticing
	// cannot commit: the group refuses its generation).
	octx := s.offsetsContext(ctx, next)
	// Bounded: while the group session is lost (Kafka was unreachable for
	// longer than the session timeout), ending waits for a heartbeat that
	// cannot happen before the next plan lets the group rejoin.
	ectx, cancel := context.WithTimeout(octx, s.cfg.SessionTimeout+s.cfg.TransactionTimeout)
	committed, err := s.sess.End(ectx, kgo.TryCommit)
	cancel()
	s.inTxn = false
	took := time.Since(s.began)
	if err != nil {
		if took >= s.cfg.TransactionTimeout && epochError(err) {
			// Not another instance taking over: the broker aborted the
			// transaction for time (its coordinator bumped the epoch).
			return s.abortedForTime(ctx, took, err)
		}
		// The outcome is unknown (Kafka unreachable for too long): the
		// next start restores whatever was committed.
		return s.endErr(err)
	}
	if !committed {
		s.log.Warn("batch rolled back: the group rebalanced during the batch; its input will be read again")
		if err := s.reload(ctx); err != nil {
			return err
		}
		return ErrRolledBack
	}
	s.mu.Lock()
	for t, o := range next {
		if _, owned := s.pos[t]; owned {
			s.pos[t] = o
		}
	}
	for p := range shares {
		if _, owned := s.pos[tp{s.cfg.Topic, p}]; owned {
			s.mapped[p] = plan.Batch
		}
	}
	if plan.Role == RoleLead {
		s.nextBatch = plan.Batch + 1
	}
	s.started = true
	s.mu.Unlock()
	if plan.publish != nil {
		if p, err := decodePlan(plan.publish); err == nil {
			s.tail.set(p)
		}
	}
	if s.rep != nil {
		rp := map[int32]int64{}
		for t, o := range next {
			if s.isRepartition(t.topic) {
				rp[t.p] = o
			}
		}
		s.rep.committed(rp)
	}
	s.bound.committed(s.planned, took)
	s.purge(ctx, next)
	return nil
}

// purgeEvery is how often the repartition records already counted are
// deleted.
const purgeEvery = 30 * time.Second

// purge deletes, now and then, the records of the owned repartition
// partitions that committed batches have counted: the topic keeps them
// until then (retention.ms=-1), not longer.
func (s *KafkaState) purge(ctx context.Context, committed map[tp]int64) {
	if time.Since(s.lastPurge) < purgeEvery {
		return
	}
	s.lastPurge = time.Now()
	var os kadm.Offsets
	for t, o := range committed {
		if s.isRepartition(t.topic) && o > 0 {
			os.AddOffset(t.topic, t.p, o, -1)
		}
	}
	if len(os) == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := s.adm.DeleteRecords(pctx, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		s.log.Warn("could not delete counted records of the repartition topic; trying again later", "err", err)
	}
}

// refusedForGood reports whether Kafka refused a record for a reason that
// writing it again cannot change.
func refusedForGood(err error) bool {
	for _, e := range []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord, kerr.CorruptMessage,
		kerr.PolicyViolation, kerr.TopicAuthorizationFailed, kerr.ClusterAuthorizationFailed, kerr.TransactionalIDAuthorizationFailed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// WriteRefusedError is a batch whose state, results or dead letters Kafka
// refused for good: the query stops rather than retry the same batch.
type WriteRefusedError struct{ Err error }

func (e *WriteRefusedError) Error() string {
	return fmt.Sprintf("Kafka refused a record of the batch: %v; the batch was rolled back", e.Err)
}

func (e *WriteRefusedError) Unwrap() error { return e.Err }

// Hint says what to do.
func (e *WriteRefusedError) Hint() string {
	switch {
	case errors.Is(e.Err, kerr.MessageTooLarge), errors.Is(e.Err, kerr.RecordListTooLarge):
		return "a record is larger than the topic accepts (a very long group-by value, or a large bad record sent to the dead-letter topic): raise max.message.bytes of the topic named above, or leave the record out of the input; the batch is read again on the next start"
	case errors.Is(e.Err, kerr.TopicAuthorizationFailed), errors.Is(e.Err, kerr.ClusterAuthorizationFailed), errors.Is(e.Err, kerr.TransactionalIDAuthorizationFailed):
		return "grant the analyzer's Kafka user write access to its state, results and dead-letter topics and its transactional id; the batch is read again on the next start"
	}
	return "the batch is read again on the next start"
}

// endErr explains a failure to end a transaction.
func (s *KafkaState) endErr(err error) error {
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		return &FencedError{InstanceID: s.cfg.InstanceID, Err: err}
	}
	return &EndError{Err: err}
}

// EndError says a batch's transaction could not be ended (Kafka was
// unreachable for too long): whether it committed is unknown; the next
// start restores whatever was committed.
type EndError struct{ Err error }

func (e *EndError) Error() string { return fmt.Sprintf("end the batch's transaction: %v", e.Err) }

func (e *EndError) Unwrap() error { return e.Err }

// Hint says what to do.
func (e *EndError) Hint() string {
	return "start the analyzer again once Kafka answers (run it under a supervisor that restarts it): it resumes from the last committed batch; nothing is lost or counted twice"
}

// FencedError says another process took over this instance's transactional
// id: it runs with the same instance id.
type FencedError struct {
	InstanceID string
	Err        error
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("another analyzer runs with instance id %q and took over; this one stops (its last batch was rolled back): %v", e.InstanceID, e.Err)
}

func (e *FencedError) Unwrap() error { return e.Err }

// Hint says what to change.
func (e *FencedError) Hint() string {
	return "give every instance of the query its own --instance-id (it defaults to the host name)"
}

// rollBack aborts the batch after a failure to write it and returns
// ErrRolledBack (a *TxnTimeoutError when the transaction ran out of time),
// or the failure when even the abort fails.
func (s *KafkaState) rollBack(ctx context.Context, cause error) error {
	err := s.Abort(ctx, cause)
	switch {
	case errors.Is(err, ErrRolledBack):
		return err
	case err != nil:
		return errors.Join(cause, err)
	}
	s.log.Warn("rolled the batch back", "err", cause)
	return ErrRolledBack
}

func (s *KafkaState) abortWith(ctx context.Context, cause error) error {
	if err := s.Abort(ctx, cause); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// Abort implements Durable. When the transaction was open longer than the
// transaction timeout and cause (or the abort itself) is Kafka saying the
// producer's transaction was ended, the broker aborted it for time: Abort
// then returns a *TxnTimeoutError and the next plans are smaller.
func (s *KafkaState) Abort(ctx context.Context, cause error) error {
	if !s.inTxn {
		return nil
	}
	took := time.Since(s.began)
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	_, err := s.sess.End(actx, kgo.TryAbort)
	s.inTxn = false
	if ctx.Err() == nil && took >= s.cfg.TransactionTimeout && (epochError(cause) || epochError(err)) {
		if cause == nil || !epochError(cause) {
			cause = err
		}
		return s.abortedForTime(actx, took, cause)
	}
	if err != nil {
		return s.endErr(err)
	}
	if ctx.Err() != nil {
		return nil // stopping: the next start restores the state anyway
	}
	return s.reload(actx)
}

// abortedForTime handles a batch whose transaction the broker aborted
// because it stayed open longer than the transaction timeout: the state is
// reloaded as for any rollback, the next batches are planned smaller, and
// the error says so (it wraps ErrRolledBack: the batch runs again).
func (s *KafkaState) abortedForTime(ctx context.Context, took time.Duration, cause error) error {
	te := &TxnTimeoutError{Took: took, Timeout: s.cfg.TransactionTimeout, Offsets: s.planned, Err: cause}
	te.Next = s.bound.abortedForTime(s.planned, took)
	s.log.Warn("the batch ran out of time: "+te.Error(), "hint", te.Hint())
	if err := s.reload(ctx); err != nil {
		return err
	}
	return te
}
