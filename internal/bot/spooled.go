package bot

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/spool"
)

// SpooledConfig configures a Spooled outlet.
type SpooledConfig struct {
	// Spool receives every record before Publish returns. Required; the
	// Spooled outlet closes it.
	Spool *spool.Spool
	// Publisher delivers the records to Kafka. Required; the Spooled
	// outlet closes it.
	Publisher *Publisher
	// Replayed is how many entries the spool held when it was opened
	// (spool.Recovery.Entries): they are counted as replayed.
	Replayed int64
	Cursors  *Cursors
	// Recent, when set, learns the ids of the creates replayed from the
	// spool: the pipeline then drops a copy the backfill fetches again.
	Recent  *RecentIDs
	Log     *slog.Logger
	Metrics *Metrics
	// RetryBackoff bounds the wait before a record Kafka refused with a
	// retriable-looking error is sent again (30 s when zero).
	RetryBackoff time.Duration
	// Gather is how long the forwarder, once it has sent everything the
	// spool held, lets new records gather before it reads them
	// (DefaultGather when zero, none when negative): one wake-up hands the
	// producer a batch instead of one record, at the price of up to that
	// much latency. The Publisher then need not linger (SpooledLinger).
	Gather time.Duration
}

// DefaultGather is SpooledConfig.Gather's default: the forwarder wakes at
// most about a hundred times a second however many messages arrive, where
// it woke once per message; the latency it adds is what the producer's
// linger (10 ms, franz-go's default) added before, which SpooledLinger
// replaces.
const DefaultGather = 10 * time.Millisecond

// SpooledLinger is the PublisherConfig.Linger for a Publisher behind a
// Spooled outlet: the forwarder hands records over in batches already.
const SpooledLinger = time.Millisecond

// Spooled is the Outlet that loses nothing when Kafka is down or the bot
// dies: Publish appends the record to the durable spool and returns; a
// forwarder reads the spool in order and hands the records to the
// Publisher; an entry leaves the spool only once Kafka acknowledged it.
// When the spool is full, Publish blocks: reading from Discord pauses
// (back-pressure, counted like the in-memory buffer's).
type Spooled struct {
	cfg SpooledConfig
	sp  *spool.Spool
	pub *Publisher
	m   *Metrics
	log *slog.Logger

	fctx    context.Context // the forwarder's
	fcancel context.CancelFunc
	fwg     sync.WaitGroup // the forwarder and retry timers

	retryMu    sync.Mutex
	closing    bool         // no new retry timers once Close began
	replayLeft atomic.Int64 // entries from before Open still to count as replayed
	retries    atomic.Int64 // consecutive retriable failures: the backoff grows with them
	closeOnce  sync.Once
	closeErr   error

	// Run's view of a blocked spool, for its log lines.
	blockedSince  time.Time
	blockedLogged time.Time
}

// NewSpooled starts the forwarder: the spool's entries from a previous run
// go to Kafka first, in their order.
func NewSpooled(cfg SpooledConfig) *Spooled {
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 30 * time.Second
	}
	if cfg.Gather == 0 {
		cfg.Gather = DefaultGather
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Spooled{cfg: cfg, sp: cfg.Spool, pub: cfg.Publisher, m: cfg.Metrics, log: log.With("component", "spool")}
	s.replayLeft.Store(cfg.Replayed)
	s.fctx, s.fcancel = context.WithCancel(context.Background())
	s.updateGauges()
	s.fwg.Go(s.forward)
	return s
}

// Publish appends m to the spool. It blocks while the spool is full or its
// file system has no space left, and returns ctx's error if ctx ends first
// (the record is then counted as failed, reason shutdown: Discord did not
// see it acknowledged and a resumed session replays it). A record that can
// never be stored (too large) is counted as failed; another write error is
// retried every second, pausing reads from Discord meanwhile.
func (s *Spooled) Publish(ctx context.Context, m *chat.Message, receivedAt time.Time) error {
	bp := entryBufs.Get().(*[]byte)
	entry, err := appendEntry((*bp)[:0], m, receivedAt)
	defer func() {
		if cap(entry) <= 64<<10 {
			*bp = entry[:0]
			entryBufs.Put(bp)
		}
	}()
	if err != nil {
		s.m.addFailed(FailEncode)
		s.log.Error("cannot encode message; not published", "message_id", m.MessageID, "err", err)
		s.cfg.Cursors.Done(m)
		return nil
	}
	lastErrLog := time.Time{}
	for {
		id, blocked, err := s.sp.Append(ctx, entry)
		if blocked > 0 {
			s.m.bpEvents.Inc()
			s.m.nBackpressd.Add(1)
			s.m.bpSeconds.Add(blocked.Seconds())
		}
		switch {
		case err == nil:
			s.m.spoolAppended.Inc()
			return nil
		case id != 0:
			// Written, but ctx ended while waiting for fsync: the record is
			// in the spool (Close fsyncs it) and will be published.
			s.m.spoolAppended.Inc()
			return err
		case errors.Is(err, spool.ErrTooLarge):
			s.m.addFailed(FailTooLarge)
			s.log.Error("message too large for the spool; not published", "message_id", m.MessageID, "bytes", len(entry))
			s.cfg.Cursors.Done(m)
			return nil
		case ctx.Err() != nil:
			s.m.addFailed(FailShutdown)
			return ctx.Err()
		case errors.Is(err, spool.ErrClosed):
			s.m.addFailed(FailShutdown)
			return err
		}
		s.m.spoolErrors.Inc()
		if time.Since(lastErrLog) > 5*time.Second {
			lastErrLog = time.Now()
			s.log.Error("cannot write to the spool; pausing reads from Discord and retrying every second", "dir", s.sp.Dir(), "err", err)
		}
		select {
		case <-ctx.Done():
			s.m.addFailed(FailShutdown)
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// blockedLogEvery is how often Run repeats that the spool is blocked.
const blockedLogEvery = 5 * time.Second

// watchBlocked logs, every blockedLogEvery while the spool takes no
// message, why and what ends it, and once when it takes messages again.
func (s *Spooled) watchBlocked(st spool.Stats, now time.Time) {
	if st.Blocked == nil {
		s.m.spoolBlocked.Set(0)
		if !s.blockedSince.IsZero() {
			s.log.Info("the spool takes messages again: reading from Discord resumed", "dir", s.sp.Dir(),
				"paused_for", now.Sub(s.blockedSince).Round(100*time.Millisecond))
			s.blockedSince, s.blockedLogged = time.Time{}, time.Time{}
		}
		return
	}
	s.m.spoolBlocked.Set(1)
	if s.blockedSince.IsZero() {
		s.blockedSince = st.BlockedSince
	}
	if now.Sub(s.blockedLogged) < blockedLogEvery {
		return
	}
	s.blockedLogged = now
	args := []any{"dir", s.sp.Dir(), "messages_waiting", st.Entries, "bytes", st.Bytes, "for", now.Sub(st.BlockedSince).Round(time.Second)}
	switch {
	case errors.Is(st.Blocked, spool.ErrFull):
		s.log.Warn("spool full (--spool-max-bytes): reading from Discord is paused until Kafka acknowledges messages",
			append(args, "max_bytes", st.MaxBytes)...)
	case spool.IsNoSpace(st.Blocked):
		if free, err := spool.FreeBytes(s.sp.Dir()); err == nil {
			args = append(args, "free_bytes", free)
		}
		s.log.Error("the spool's file system is full: reading from Discord is paused (Discord keeps the events) until Kafka "+
			"takes what the spool holds, which frees its space, or space is freed on that file system; give the spool a file "+
			"system with more free space than --spool-max-bytes, or lower --spool-max-bytes", append(args, "err", st.Blocked)...)
	default:
		s.log.Error("cannot write to the spool: reading from Discord is paused; retrying every second", append(args, "err", st.Blocked)...)
	}
}

// SpoolHealthy returns an error, saying why, while the spool has taken no
// message for longer than max (reading from Discord is then paused).
func (s *Spooled) SpoolHealthy(max time.Duration) error {
	st := s.sp.Stats()
	if st.Blocked == nil {
		return nil
	}
	d := time.Since(st.BlockedSince)
	if d < max {
		return nil
	}
	var why string
	switch {
	case errors.Is(st.Blocked, spool.ErrFull):
		why = fmt.Sprintf("the spool is full (%d of %d bytes, --spool-max-bytes) with messages Kafka has not acknowledged", st.Bytes, st.MaxBytes)
	case spool.IsNoSpace(st.Blocked):
		why = "the spool's file system is full (no space left on device)"
		if free, err := spool.FreeBytes(s.sp.Dir()); err == nil {
			why += fmt.Sprintf(", %d bytes free", free)
		}
	default:
		why = fmt.Sprintf("the spool cannot be written (%v)", st.Blocked)
	}
	return fmt.Errorf("%s for %s: reading from Discord is paused; %d messages wait in the spool %s", why, d.Round(time.Second), st.Entries, s.sp.Dir())
}

// forward reads the spool in order and hands each record to the
// publisher, until Close.
func (s *Spooled) forward() {
	for {
		e, err := s.sp.Next(s.fctx)
		if err != nil {
			if s.fctx.Err() != nil || errors.Is(err, spool.ErrClosed) {
				return
			}
			s.log.Error("cannot read the spool; retrying in a second", "err", err)
			select {
			case <-s.fctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		rec, err := decodeEntry(e.Data)
		if err != nil {
			// Only a bug or a foreign file gets here: the CRC matched.
			s.log.Error("unreadable spool entry skipped", "id", e.ID, "err", err)
			s.m.addFailed(FailSpoolEntry)
			s.sp.Ack(e.ID)
			continue
		}
		if s.replayLeft.Load() > 0 && s.replayLeft.Add(-1) >= 0 {
			s.m.addReplayed()
			if rec.kind == chat.KindCreate {
				s.cfg.Recent.Add(rec.messageID)
			}
		}
		if err := s.send(e.ID, rec); err != nil {
			return
		}
		if s.cfg.Gather > 0 && !s.sp.Unread() {
			// Sent all there was: let the next records gather.
			select {
			case <-s.fctx.Done():
				return
			case <-time.After(s.cfg.Gather):
			}
		}
	}
}

// send waits for a publisher slot, then produces the record.
func (s *Spooled) send(id uint64, rec entryRecord) error {
	if err := s.pub.acquire(s.fctx, false); err != nil {
		return err
	}
	s.pub.produce(rec.key, rec.value, rec.receivedAt, func(err error) { s.delivered(id, rec, err) })
	return nil
}

// delivered handles Kafka's answer for spool entry id.
func (s *Spooled) delivered(id uint64, rec entryRecord, err error) {
	msg := rec.message()
	if err == nil {
		s.sp.Ack(id)
		s.cfg.Cursors.Done(msg)
		s.retries.Store(0)
		return
	}
	switch reason := failReason(err); reason {
	case FailTooLarge:
		// Kafka will never take it: drop it from the spool, counted.
		s.m.addFailed(reason)
		s.log.Error("Kafka refused a message as too large; it is not published", "message_id", rec.messageID, "err", err)
		s.sp.Ack(id)
		s.cfg.Cursors.Done(msg)
	case FailShutdownTimeout:
		// Shutting down: the entry stays in the spool for the next start.
	default:
		// Anything else (authorization, an unexpected broker answer): keep
		// the entry and send it again later; it stays in the spool until
		// Kafka takes it.
		n := s.retries.Add(1)
		s.m.retries.Inc()
		wait := min(time.Duration(n)*time.Second, s.cfg.RetryBackoff)
		s.log.Error("Kafka did not accept a message; it stays in the spool and is sent again", "message_id", rec.messageID,
			"err", err, "retry_in", wait)
		s.retryMu.Lock()
		defer s.retryMu.Unlock()
		if s.closing {
			return // stays in the spool for the next start
		}
		s.fwg.Go(func() {
			select {
			case <-s.fctx.Done():
			case <-time.After(wait):
				_ = s.send(id, rec)
			}
		})
	}
}

// Run updates the spool gauges, and says when the spool is blocked and
// when it takes messages again, until ctx ends.
func (s *Spooled) Run(ctx context.Context) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			s.watchBlocked(s.updateGauges(), now)
		}
	}
}

func (s *Spooled) updateGauges() spool.Stats {
	st := s.sp.Stats()
	s.m.spoolBytes.Set(float64(st.Bytes))
	s.m.spoolEntries.Set(float64(st.Entries))
	return st
}

// Pending is how many records wait in the spool for Kafka.
func (s *Spooled) Pending() int64 { return s.sp.Stats().Entries }

// Marks are the spool's (see spool.Spool.Marks): what Kafka has
// acknowledged of what was taken so far.
func (s *Spooled) Marks() (next, low uint64) { return s.sp.Marks() }

// Healthy returns the publisher's health (Kafka acknowledging).
func (s *Spooled) Healthy(maxStall time.Duration) error { return s.pub.Healthy(maxStall) }

// Close waits until Kafka acknowledged every spooled record or ctx's
// deadline passes, then stops forwarding, closes the publisher (records in
// flight are abandoned, not lost: they stay in the spool) and the spool. It
// reports an error only if the spool could not be closed cleanly; records
// left in the spool are logged and counted (Counts.Spooled), and the next
// start publishes them first.
func (s *Spooled) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		t := time.NewTicker(20 * time.Millisecond)
	wait:
		for s.sp.Stats().Entries > 0 {
			select {
			case <-ctx.Done():
				break wait
			case <-t.C:
			}
		}
		t.Stop()
		s.retryMu.Lock()
		s.closing = true
		s.retryMu.Unlock()
		s.fcancel()
		s.fwg.Wait()
		// Give what is in flight the rest of the deadline.
		_ = s.pub.Close(ctx)
		s.updateGauges()
		left := s.sp.Stats().Entries
		s.m.spooledLeft.Store(left)
		if err := s.sp.Close(); err != nil {
			s.closeErr = fmt.Errorf("close the spool: %w", err)
		}
		if left > 0 {
			s.log.Warn("messages not yet acknowledged by Kafka stay in the spool; the next start publishes them first",
				"messages", left, "dir", s.sp.Dir())
		}
	})
	return s.closeErr
}

var _ Outlet = (*Spooled)(nil)

// Spool entry payload, version 1:
//
//	byte     1 (version)
//	byte     kind: 'c' create, 'u' update, 'd' delete
//	int64 LE received at, Unix nanoseconds
//	uvarint+bytes  channel id, guild id ("" for DMs), message id, Kafka key
//	rest     the Kafka record value (the wire format)
type entryRecord struct {
	kind                          chat.Kind
	receivedAt                    time.Time
	channelID, guildID, messageID string
	key, value                    []byte
}

func (r entryRecord) message() *chat.Message {
	m := &chat.Message{Kind: r.kind, ChannelID: r.channelID, MessageID: r.messageID}
	if r.guildID != "" {
		m.GuildID = &r.guildID
	}
	return m
}

var kindByte = map[chat.Kind]byte{chat.KindCreate: 'c', chat.KindUpdate: 'u', chat.KindDelete: 'd'}

// entryBufs holds the buffers Publish builds spool entries in (the spool
// copies an entry before Append returns).
var entryBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// appendEntry appends m's spool entry to b: the header, then the record
// encoded (chat.AppendEncode).
func appendEntry(b []byte, m *chat.Message, receivedAt time.Time) ([]byte, error) {
	guild := ""
	if m.GuildID != nil {
		guild = *m.GuildID
	}
	b = append(b, 1, kindByte[m.Kind])
	b = binary.LittleEndian.AppendUint64(b, uint64(receivedAt.UnixNano()))
	for _, f := range []string{m.ChannelID, guild, m.MessageID} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	key := m.Key()
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	return chat.AppendEncode(b, m)
}

func decodeEntry(b []byte) (entryRecord, error) {
	var r entryRecord
	if len(b) < 10 || b[0] != 1 {
		return r, errors.New("unknown spool entry version")
	}
	switch b[1] {
	case 'c':
		r.kind = chat.KindCreate
	case 'u':
		r.kind = chat.KindUpdate
	case 'd':
		r.kind = chat.KindDelete
	default:
		return r, fmt.Errorf("unknown kind %q", b[1])
	}
	r.receivedAt = time.Unix(0, int64(binary.LittleEndian.Uint64(b[2:10])))
	b = b[10:]
	var fields [4][]byte
	for i := range fields {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return r, errors.New("truncated spool entry")
		}
		fields[i] = b[k : k+int(n)]
		b = b[k+int(n):]
	}
	r.channelID, r.guildID, r.messageID = string(fields[0]), string(fields[1]), string(fields[2])
	r.key = fields[3]
	r.value = b
	return r, nil
}
