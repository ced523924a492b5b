package botgroup

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/kafka"
)

// SessionsTopic is the name of a group's session store: a compacted topic
// keyed by shard.
func SessionsTopic(group string) string { return "cordstream-bot." + group + ".sessions" }

// SessionState is what a new holder of a shard needs to RESUME its
// Gateway session.
type SessionState struct {
	Shard      int       `json:"shard"`
	ShardCount int       `json:"shard_count"`
	SessionID  string    `json:"session_id"`
	Seq        int64     `json:"seq"` // every event up to it is acknowledged by Kafka
	ResumeURL  string    `json:"resume_gateway_url"`
	Holder     string    `json:"holder"`
	WrittenAt  time.Time `json:"written_at"`
}

func sessionKey(shard, count int) string { return strconv.Itoa(shard) + "/" + strconv.Itoa(count) }

// SessionStore keeps the group's Gateway sessions in a compacted topic.
// A holder writes a shard's state only for a Seq whose events, and every
// event before them, Kafka has acknowledged (AckFrontier tells which):
// resuming from a later one would skip events that never reached the
// topic. Safe for concurrent use.
type SessionStore struct {
	cfg   kafka.Config
	topic string
	log   *slog.Logger
	cl    *kgo.Client
}

// NewSessionStore connects and makes sure the topic exists (compacted,
// one partition).
func NewSessionStore(ctx context.Context, cfg kafka.Config, group string, replicationFactor int16, log *slog.Logger) (*SessionStore, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if replicationFactor == 0 {
		replicationFactor = -1
	}
	topic := SessionsTopic(group)
	log = log.With("component", "botgroup", "topic", topic)
	cl, err := kafka.NewClient(ctx, cfg, log, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	if err != nil {
		return nil, err
	}
	if _, err := kafka.EnsureTopic(ctx, cl, kafka.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: replicationFactor,
		Configs: map[string]string{"cleanup.policy": "compact"}}); err != nil {
		cl.Close()
		return nil, err
	}
	return &SessionStore{cfg: cfg, topic: topic, log: log, cl: cl}, nil
}

// Put records a shard's session (acks=all: it returns once Kafka has it).
func (s *SessionStore) Put(ctx context.Context, st SessionState) error {
	if st.SessionID == "" || st.ShardCount < 1 || st.Shard < 0 || st.Shard >= st.ShardCount || st.Seq < 0 {
		return fmt.Errorf("botgroup: not a session to keep: %+v", st)
	}
	if st.WrittenAt.IsZero() {
		st.WrittenAt = time.Now().UTC()
	}
	b, _ := json.Marshal(st)
	r := &kgo.Record{Key: []byte(sessionKey(st.Shard, st.ShardCount)), Value: b}
	if err := s.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		return fmt.Errorf("botgroup: keep the session of shard %d: %w", st.Shard, err)
	}
	return nil
}

// Forget removes a shard's session (Discord ended it: the next holder
// identifies).
func (s *SessionStore) Forget(ctx context.Context, shard, count int) error {
	r := &kgo.Record{Key: []byte(sessionKey(shard, count))} // a tombstone
	if err := s.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		return fmt.Errorf("botgroup: forget the session of shard %d: %w", shard, err)
	}
	return nil
}

// Load reads the topic to its end and returns the latest session of each
// shard of a count, by shard.
func (s *SessionStore) Load(ctx context.Context, count int) (map[int]SessionState, error) {
	ends, err := kadm.NewClient(s.cl).ListEndOffsets(ctx, s.topic)
	if err != nil {
		return nil, fmt.Errorf("botgroup: end of %q: %w", s.topic, err)
	}
	end, ok := ends.Lookup(s.topic, 0)
	if !ok || end.Err != nil {
		return nil, fmt.Errorf("botgroup: end of %q: %v", s.topic, end.Err)
	}
	out := map[int]SessionState{}
	if end.Offset == 0 {
		return out, nil
	}
	rd, err := kafka.NewClient(ctx, s.cfg, s.log,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	suffix := "/" + strconv.Itoa(count)
	for {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := fs.Err0(); err != nil {
			return nil, fmt.Errorf("botgroup: read %q: %w", s.topic, err)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end.Offset-1 {
				done = true
			}
			key := string(r.Key)
			shardText, ok := strings.CutSuffix(key, suffix)
			if !ok {
				return // another shard count
			}
			shard, err := strconv.Atoi(shardText)
			if err != nil {
				return
			}
			if r.Value == nil {
				delete(out, shard)
				return
			}
			var st SessionState
			if err := json.Unmarshal(r.Value, &st); err != nil || st.SessionID == "" {
				s.log.Warn("not a session record; skipped", "offset", r.Offset, "key", key)
				return
			}
			out[shard] = st
		})
		if done {
			return out, nil
		}
	}
}

// Close closes the Kafka client.
func (s *SessionStore) Close() { s.cl.Close() }

// AckFrontier tracks, for one shard, the sequence numbers of the events
// read from Discord and those Kafka acknowledged, and gives the highest
// sequence up to which every event is acknowledged: the only one a
// session record may carry. Events that make no record (READY,
// GUILD_CREATE, filtered messages) are acknowledged as soon as they are
// tracked. Sequences must be tracked in increasing order; acks may come in
// any order. Safe for concurrent use.
type AckFrontier struct {
	mu       sync.Mutex
	pending  []int64 // tracked, not yet below the frontier, ascending
	acked    map[int64]bool
	frontier int64
}

// NewAckFrontier starts at seq (0: nothing yet; a resumed session's
// recorded seq).
func NewAckFrontier(seq int64) *AckFrontier {
	return &AckFrontier{acked: map[int64]bool{}, frontier: seq}
}

// Track records that the event of seq was read; acked: it needs no Kafka
// acknowledgement.
func (f *AckFrontier) Track(seq int64, acked bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if seq <= f.frontier || (len(f.pending) > 0 && seq <= f.pending[len(f.pending)-1]) {
		return // replayed or repeated: already tracked
	}
	f.pending = append(f.pending, seq)
	if acked {
		f.acked[seq] = true
	}
	f.advance()
}

// Ack records that Kafka acknowledged the event of seq.
func (f *AckFrontier) Ack(seq int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if seq <= f.frontier {
		return
	}
	f.acked[seq] = true
	f.advance()
}

func (f *AckFrontier) advance() {
	i := 0
	for i < len(f.pending) && f.acked[f.pending[i]] {
		delete(f.acked, f.pending[i])
		f.frontier = f.pending[i]
		i++
	}
	if i > 0 {
		f.pending = append(f.pending[:0], f.pending[i:]...)
	}
}

// Frontier returns the highest seq up to which every tracked event is
// acknowledged.
func (f *AckFrontier) Frontier() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frontier
}
