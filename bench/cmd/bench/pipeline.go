//go:build linux

package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/bench/workload"
	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/discord/sim"
	"github.com/cordstream/cordstream/internal/kafka"
)

// simWorld is a simulated Discord populated from the workload: its guilds,
// channels and authors, posting the workload's texts.
type simWorld struct {
	srv      *sim.Server
	gen      *workload.Generator
	users    []sim.ID // per workload author
	channels []sim.ID // per workload channel

	mu   sync.Mutex
	sent map[string]time.Time // message id -> when it was posted
	// bySeedKey is set by keySeedRecords: seedKey -> when each message
	// with that key was posted, in posting order.
	bySeedKey map[string][]time.Time
}

func newSimWorld(seed uint64, authors int) (*simWorld, error) {
	srv := sim.New(sim.Config{PrivilegedIntents: sim.IntentMessageContent, SentLimit: 1, HistoryLimit: 50,
		// The traffic here is far above what one Discord channel sees; the
		// simulator's own limits are not what is measured.
		RESTGlobalLimit: -1})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start the Discord simulator: %w", err)
	}
	w := &simWorld{srv: srv, gen: workload.New(workload.Config{Seed: seed, Authors: authors, Guilds: 10}), sent: map[string]time.Time{}}
	guilds := map[string]sim.ID{}
	for i, ch := range w.gen.Channels() {
		gid, ok := guilds[*ch.GuildID]
		if !ok {
			gid = srv.AddGuild(fmt.Sprintf("Guild %d", len(guilds)+1)).ID
			guilds[*ch.GuildID] = gid
		}
		w.channels = append(w.channels, srv.AddChannel(gid, fmt.Sprintf("channel-%d", i)).ID)
	}
	for _, a := range w.gen.Authors() {
		u := sim.User{Username: a.Name, Bot: a.Bot}
		if a.GlobalName != nil {
			u.GlobalName = *a.GlobalName
		}
		w.users = append(w.users, srv.AddUser(u).ID)
	}
	return w, nil
}

func (w *simWorld) Close() { w.srv.Close() }

// post posts one message of the workload and records when.
func (w *simWorld) post() error {
	text := w.gen.Text()
	for text == "" { // an empty message would look like a missing Message Content intent
		text = w.gen.Text()
	}
	spec := sim.MessageSpec{ChannelID: w.channels[w.gen.PickChannel()], AuthorID: w.users[w.gen.PickAuthor()], Content: text}
	t := time.Now()
	m, err := w.srv.Post(spec)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.sent[m.ID.String()] = t
	if w.bySeedKey != nil {
		k := seedKey(m.Author.ID.String(), chat.FormatTimestamp(m.Timestamp), m.Content)
		w.bySeedKey[k] = append(w.bySeedKey[k], t)
	}
	w.mu.Unlock()
	return nil
}

// keySeedRecords makes the world also remember its posts by the fields a
// record of the seed's producer carries (it has no message id).
func (w *simWorld) keySeedRecords() {
	w.mu.Lock()
	w.bySeedKey = map[string][]time.Time{}
	w.mu.Unlock()
}

// postedAt returns when message id was posted.
func (w *simWorld) postedAt(id string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.sent[id]
	return t, ok
}

// forget drops the record of posted messages (between phases).
func (w *simWorld) forget() {
	w.mu.Lock()
	w.sent = map[string]time.Time{}
	if w.bySeedKey != nil {
		w.bySeedKey = map[string][]time.Time{}
	}
	w.mu.Unlock()
}

// traffic posts messages evenly paced at rate per second (rate <= 0: as fast
// as possible) until count messages (count <= 0: no limit) or until d
// passed (d <= 0: no limit) or ctx ends. It returns how many it posted.
func (w *simWorld) traffic(ctx context.Context, rate float64, count int, d time.Duration) (int, error) {
	start := time.Now()
	n := 0
	for (count <= 0 || n < count) && (d <= 0 || time.Since(start) < d) {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if rate > 0 {
			due := start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				time.Sleep(wait)
			}
		}
		if err := w.post(); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// seen is one record of the topic as the watcher saw it.
type seen struct {
	partition int32
	offset    int64
	appended  time.Time // the broker's LogAppendTime (ms)
}

// watcher reads a topic from its start and remembers every record's
// message id, position and append time.
type watcher struct {
	cl   *kgo.Client
	done chan struct{}

	mu      sync.Mutex
	records map[string]seen
	bad     int
	err     error
}

func startWatcher(ctx context.Context, kcfg kafka.Config, topic string) (*watcher, error) {
	cl, err := kafka.NewClient(ctx, kcfg, nil, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	w := &watcher{cl: cl, done: make(chan struct{}), records: map[string]seen{}}
	go w.run()
	return w, nil
}

func (w *watcher) run() {
	defer close(w.done)
	var p chat.Projection
	for {
		fs := w.cl.PollFetches(context.Background())
		if fs.IsClientClosed() {
			return
		}
		fs.EachError(func(t string, part int32, err error) {
			w.mu.Lock()
			w.err = fmt.Errorf("watch %s/%d: %w", t, part, err)
			w.mu.Unlock()
		})
		w.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			if err := chat.Project(r.Value, &p); err != nil || p.MessageID == "" {
				w.bad++
				return
			}
			w.records[strings.Clone(p.MessageID)] = seen{partition: r.Partition, offset: r.Offset, appended: r.Timestamp}
		})
		w.mu.Unlock()
	}
}

// count returns how many records were seen.
func (w *watcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.records)
}

// waitFor waits until n records were seen, or timeout.
func (w *watcher) waitFor(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		got := w.count()
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d messages reached Kafka within %v", got, n, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (w *watcher) get(id string) (seen, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.records[id]
	return s, ok
}

func (w *watcher) Close() {
	w.cl.Close()
	<-w.done
}

// ingestLatencies returns, for every message posted in world and seen by
// the watcher, post -> broker append in ms. The append time has millisecond
// resolution: half a millisecond is added so that the estimate is unbiased.
func ingestLatencies(world *simWorld, w *watcher) (lat []float64, first, last time.Time) {
	world.mu.Lock()
	defer world.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, posted := range world.sent {
		s, ok := w.records[id]
		if !ok {
			continue
		}
		app := s.appended.Add(500 * time.Microsecond)
		lat = append(lat, float64(app.Sub(posted))/1e6)
		if first.IsZero() || posted.Before(first) {
			first = posted
		}
		if app.After(last) {
			last = app
		}
	}
	return lat, first, last
}

// freePort returns a loopback port nobody listens on right now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// scrape reads a Prometheus text endpoint: plain samples by name (labels
// included in the name) and the buckets of histogram name hist.
func scrape(ctx context.Context, url, hist string) (map[string]float64, []bucket, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	vals := map[string]float64{}
	var bs []bucket
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name, v := line[:i], line[i+1:]
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			continue
		}
		vals[name] = f
		if strings.HasPrefix(name, hist+"_bucket{") {
			le := name[strings.Index(name, `le="`)+4:]
			le = le[:strings.IndexByte(le, '"')]
			b := bucket{count: f, le: math.Inf(1)}
			if le != "+Inf" {
				if b.le, err = strconv.ParseFloat(le, 64); err != nil {
					continue
				}
			}
			bs = append(bs, b)
		}
	}
	slices.SortFunc(bs, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	return vals, bs, sc.Err()
}

// sumPrefix adds the samples whose name starts with prefix.
func sumPrefix(vals map[string]float64, prefix string) float64 {
	var s float64
	for k, v := range vals {
		if k == prefix || strings.HasPrefix(k, prefix+"{") {
			s += v
		}
	}
	return s
}

// waitMetric polls url until the samples named prefix add up to at least want.
func waitMetric(ctx context.Context, url, prefix string, want float64, timeout time.Duration, p *proc) error {
	deadline := time.Now().Add(timeout)
	for {
		vals, _, err := scrape(ctx, url, "")
		if err == nil && sumPrefix(vals, prefix) >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not reach %v within %v (last error: %v)", prefix, want, timeout, err)
		}
		if p.exited() {
			return fmt.Errorf("%s exited", p.name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startBot runs the bot against the simulator with the spool setting
// spoolSync ("group", "always", a period, or "off" for no spool), its spool in the
// harness's directory; with a profile file, under the CPU profiler.
func (h *harness) startBot(world *simWorld, topic, metricsAddr, spoolSync string, tail *stderrTail, every time.Duration, profBin, profile string) (*proc, error) {
	bin, env := h.bin, []string{"DISCORD_TOKEN=" + world.srv.Token()}
	if profile != "" {
		bin, env = profBin, append(env, "BENCH_CPUPROFILE="+profile)
	}
	args := []string{"bot", "--brokers", h.brokers, "--topic", topic,
		"--discord-api-url", world.srv.APIURL(), "--metrics", metricsAddr, "--no-create-topic", "--log-level", "warn"}
	if spoolSync == "off" {
		args = append(args, "--spool-dir", "off")
	} else {
		args = append(args, "--spool-dir", filepath.Join(h.work, "spool-"+topic), "--spool-sync", spoolSync)
	}
	return startProcEvery(bin, args, env, nil, func(_ time.Time, l string) { tail.add(l) }, every)
}

// newTopic creates a fresh one-partition topic whose record timestamps are
// the broker's append times.
func (h *harness) newTopic(ctx context.Context, what string) (string, error) {
	name := fmt.Sprintf("%s-%s-%d", h.cfg.topicPrefix, what, time.Now().UnixNano())
	cl, err := kafka.NewClient(ctx, h.kcfg, nil)
	if err != nil {
		return "", err
	}
	defer cl.Close()
	return name, createTopic(ctx, cl, name, 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
}

func (h *harness) dropTopic(name string) { deleteTopics(h.kcfg, []string{name}, h.log) }
