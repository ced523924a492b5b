package analyzer

// KafkaState's watchers: what it reports while it waits (Waiting,
// Unreachable), an instance left without partitions, and group offsets the
// broker holds for a transaction it has not ended.

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/kafka"
)

// Unreachable returns since when no broker has answered the state's
// client (zero when they answer), and the last error.
func (s *KafkaState) Unreachable() (time.Time, error) { return s.reach.Unreachable() }

// Waiting says why no batch can run now that is not a stall: state being
// restored, or the group not having assigned partitions yet.
func (s *KafkaState) Waiting() string {
	if s.restoring.Load() > 0 {
		return fmt.Sprintf("restoring state from the state topics (for %v)",
			time.Since(time.Unix(0, s.restoreSince.Load())).Round(time.Second))
	}
	switch w := s.waitingFor.Load(); {
	case w > 0:
		return fmt.Sprintf("waiting for the other instances' shares of batch %d", w-1)
	case w < 0:
		return "waiting for the leader's next batch plan"
	}
	s.mu.Lock()
	assigned := s.assigned
	s.mu.Unlock()
	select {
	case <-assigned:
		return ""
	default:
		return "waiting for the group to assign partitions to this instance"
	}
}

// idleWatch tells, plan after plan, how long an instance has owned no
// partition, so that an instance left without work says so instead of
// idling in silence.
type idleWatch struct{ since, said time.Time }

// idleSayEvery is how often an instance that owns no partition says so.
const idleSayEvery = time.Minute

// hungAfter is how long a transaction may keep state partitions from being
// restored before the wait is reported as a transaction the broker has not
// ended (far longer than a transaction timeout of the default 15 s).
var hungAfter = 2 * time.Minute // a variable for tests

// note records whether the instance owns no partition at now; it returns
// how long that has lasted when it is time to say so (idleSayEvery after it
// began, then every idleSayEvery).
func (w *idleWatch) note(now time.Time, none bool) (time.Duration, bool) {
	switch {
	case !none:
		*w = idleWatch{}
		return 0, false
	case w.since.IsZero():
		w.since, w.said = now, now
		return 0, false
	case now.Sub(w.said) < idleSayEvery:
		return 0, false
	}
	w.said = now
	return now.Sub(w.since), true
}

// unstableLogger is the group client's franz-go logger: it also watches
// the offset fetches franz-go retries quietly (at info) while the broker
// holds the offsets for a transaction it has not completed.
func unstableLogger(log *slog.Logger, u *unstableWatch) *kafka.Logger {
	return kafka.NewLogger(log, func(level kgo.LogLevel, _ string, keyvals []any) {
		if level == kgo.LogLevelInfo {
			u.check(log, keyvals)
		}
	})
}

// unstableWatch tells when the group's committed offsets have stayed
// unstable (UNSTABLE_OFFSET_COMMIT) for a while: the broker holds them for a
// transaction it has not completed, and the group's partitions cannot be
// read until it does. franz-go waits for that without limit, as the protocol
// requires, and logs each retry at info only.
type unstableWatch struct {
	mu   sync.Mutex
	now  func() time.Time
	w    idleWatch
	last time.Time
}

// unstableGap is how long without an unstable fetch ends a spell of them.
const unstableGap = 10 * time.Second

// check looks for an UNSTABLE_OFFSET_COMMIT error among a franz-go log
// line's key-values and warns, once the offsets have stayed unstable for
// idleSayEvery, every idleSayEvery.
func (u *unstableWatch) check(log *slog.Logger, keyvals []any) {
	var topic any
	var partition any
	found := false
	for i := 0; i+1 < len(keyvals); i += 2 {
		switch keyvals[i] {
		case "topic":
			topic = keyvals[i+1]
		case "partition":
			partition = keyvals[i+1]
		case "err":
			if err, ok := keyvals[i+1].(error); ok && errors.Is(err, kerr.UnstableOffsetCommit) {
				found = true
			}
		}
	}
	if !found {
		return
	}
	u.mu.Lock()
	now := u.now()
	if !u.last.IsZero() && now.Sub(u.last) > unstableGap {
		u.w.note(now, false)
	}
	u.last = now
	d, say := u.w.note(now, true)
	u.mu.Unlock()
	if say {
		log.Warn("the group's committed offsets stay unstable: the broker holds them for a transaction it has not completed, and this instance cannot read its partitions until it does (see \"When Kafka is unreachable\" in docs/OPERATIONS.md)",
			"for", d.Round(time.Second), "topic", topic, "partition", partition)
	}
}
