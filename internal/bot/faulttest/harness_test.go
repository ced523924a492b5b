package faulttest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/cli"
	"github.com/cordstream/cordstream/internal/discord/sim"
	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
)

// Environment variables of these tests.
const (
	envChild = "CORDSTREAM_FAULTTEST_CHILD" // "1": this process runs the bot command
	envArgs  = "CORDSTREAM_FAULTTEST_ARGS"  // its arguments, a JSON list
	// EnvFull runs the full sizes.
	envFull = "CORDSTREAM_FAULT_FULL"
	// envPort is the private broker's PLAINTEXT port; the controller uses
	// the next one (default 29092, 29093).
	envPort = "CORDSTREAM_FAULT_KAFKA_PORT"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		var args []string
		if err := json.Unmarshal([]byte(os.Getenv(envArgs)), &args); err != nil {
			fmt.Fprintln(os.Stderr, "faulttest child:", err)
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Run(ctx, args, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	code := m.Run()
	if os.Getenv(envUserNS) != "1" {
		// Inside a user namespace the broker is the parent run's: it
		// stops it.
		priv.shutdown()
	}
	os.Exit(code)
}

func full() bool { return os.Getenv(envFull) == "1" }

// envDuration reads a duration override.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("$%s: %v", name, err)
		}
		return d
	}
	return def
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("$%s: %v", name, err)
		}
		return n
	}
	return def
}

// broker is a private single-node Kafka run by scripts/kafka on ports of
// its own, so that stopping it disturbs nothing else.
type broker struct {
	once    sync.Once
	err     error
	started bool
	script  string
	state   string
	port    int
	addr    string
}

var priv broker

func privateBroker(t *testing.T) *broker {
	t.Helper()
	kafkatest.Brokers(t) // skips (or fails) like every integration test when no broker is set up
	priv.once.Do(priv.start)
	if priv.err != nil {
		t.Fatalf("start the private broker: %v", priv.err)
	}
	return &priv
}

func (b *broker) env() []string {
	return append(os.Environ(),
		"CORDSTREAM_KAFKA_PORT="+strconv.Itoa(b.port),
		"CORDSTREAM_KAFKA_CONTROLLER_PORT="+strconv.Itoa(b.port+1),
		"CORDSTREAM_KAFKA_SECURE_PORT="+strconv.Itoa(b.port+2),
		"CORDSTREAM_KAFKA_SECURE=0",
		"CORDSTREAM_KAFKA_STATE="+b.state)
}

func (b *broker) run(args ...string) error {
	cmd := exec.Command(b.script, args...)
	cmd.Env = b.env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("scripts/kafka %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (b *broker) start() {
	b.port = 29092
	if v := os.Getenv(envPort); v != "" {
		if b.port, b.err = strconv.Atoi(v); b.err != nil {
			return
		}
	}
	if b.script, b.err = filepath.Abs("../../../scripts/kafka"); b.err != nil {
		return
	}
	// A fixed directory: a broker left running by an interrupted run is
	// found and reused rather than colliding on the port.
	b.state = filepath.Join(os.TempDir(), fmt.Sprintf("cordstream-faulttest-kafka-%d", b.port))
	b.addr = fmt.Sprintf("127.0.0.1:%d", b.port)
	b.err = b.run("start")
	b.started = b.err == nil
}

func (b *broker) shutdown() {
	if b.started {
		if err := b.run("clean"); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
}

func (b *broker) pid(t *testing.T) int {
	t.Helper()
	s, err := os.ReadFile(filepath.Join(b.state, "kafka.pid"))
	if err != nil {
		t.Fatalf("broker pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(s)))
	if err != nil {
		t.Fatalf("broker pid: %v", err)
	}
	return pid
}

// down makes the broker unreachable: "pause" freezes its process
// (SIGSTOP: connections hang), "stop" stops it (connections refused).
func (b *broker) down(t *testing.T, mode string) {
	t.Helper()
	switch mode {
	case "pause":
		if err := syscall.Kill(b.pid(t), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(b.pid(t), syscall.SIGCONT) })
	case "stop":
		if err := b.run("stop"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.run("start") })
	default:
		t.Fatalf("unknown outage mode %q (pause or stop)", mode)
	}
}

func (b *broker) up(t *testing.T, mode string) {
	t.Helper()
	switch mode {
	case "pause":
		if err := syscall.Kill(b.pid(t), syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	case "stop":
		if err := b.run("start"); err != nil {
			t.Fatal(err)
		}
	}
}

// client connects to the private broker.
func (b *broker) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// record is one record read back.
type record struct {
	key, value string
	msg        chat.Message
}

// readTopic returns every record of topic, by message id.
func (b *broker) readTopic(t *testing.T, topic string) map[string][]record {
	t.Helper()
	cl := b.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	out := map[string][]record{}
	var n int64
	for n < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", n, want, topic)
		}
		for _, r := range fs.Records() {
			n++
			m, err := chat.Decode(r.Value)
			if err != nil {
				t.Fatalf("record does not decode: %v: %s", err, r.Value)
			}
			out[m.MessageID] = append(out[m.MessageID], record{key: string(r.Key), value: string(r.Value), msg: m})
		}
	}
	return out
}

// botProc is the bot command running as a child process.
type botProc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	code int
}

// startBot runs "cordstream bot args..." with the token in the
// environment and no CORDSTREAM_* variables (they would set flags).
func startBot(t *testing.T, name, token string, args ...string) *botProc {
	t.Helper()
	a, _ := json.Marshal(append([]string{"bot"}, args...))
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CORDSTREAM_") && !strings.HasPrefix(kv, "DISCORD_TOKEN=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, envChild+"=1", envArgs+"="+string(a), "DISCORD_TOKEN="+token)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &botProc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s log (last lines):\n%s", name, p.tail(40))
		}
	})
	return p
}

func (p *botProc) logs() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

func (p *botProc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.logs(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop sends sig and waits for the exit code.
func (p *botProc) stop(t *testing.T, sig syscall.Signal, timeout time.Duration) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("the bot did not exit within %s of %v; log:\n%s", timeout, sig, p.tail(30))
	}
	return -1
}

var metricsAddr = regexp.MustCompile(`serving metrics.* addr=(\S+)`)

// metric reads one value from the bot's /metrics (the sum over labels).
func (p *botProc) metric(t *testing.T, name string) float64 {
	t.Helper()
	m := metricsAddr.FindStringSubmatch(p.logs())
	if m == nil {
		return math.NaN()
	}
	resp, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		return math.NaN()
	}
	defer resp.Body.Close()
	sum, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum, found = sum+v, true
		}
	}
	if !found {
		return math.NaN()
	}
	return sum
}

// health reads the bot's /healthz: the HTTP status and the body.
func (p *botProc) health(t *testing.T) (int, string) {
	t.Helper()
	m := metricsAddr.FindStringSubmatch(p.logs())
	if m == nil {
		return 0, ""
	}
	resp, err := http.Get("http://" + m[1] + "/healthz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// world is the simulated Discord with a guild, channels and authors.
type world struct {
	srv   *sim.Server
	chans []sim.Channel
	users []sim.User
}

func newWorld(t *testing.T) *world {
	t.Helper()
	srv := sim.New(sim.Config{PrivilegedIntents: sim.IntentMessageContent, HeartbeatInterval: time.Second,
		GatewaySendLimit: 100000, IdentifyInterval: -1})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	w := &world{srv: srv}
	g := srv.AddGuild("fault")
	for i := range 3 {
		w.chans = append(w.chans, srv.AddChannel(g.ID, fmt.Sprint("chan-", i)))
	}
	for i := range 20 {
		w.users = append(w.users, srv.AddUser(sim.User{Username: fmt.Sprint("user", i)}))
	}
	return w
}

// traffic posts messages at a steady rate until stopped or n are sent.
type traffic struct {
	w      *world
	mu     sync.Mutex
	sent   []sim.Message
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func (w *world) startTraffic(t *testing.T, rate float64, n int) *traffic {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr := &traffic{w: w, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		start := time.Now()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		i := 0
		for n <= 0 || i < n {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			due := int(time.Since(start).Seconds() * rate)
			for ; i < due && (n <= 0 || i < n); i++ {
				m, err := w.srv.Post(sim.MessageSpec{ChannelID: w.chans[i%len(w.chans)].ID, AuthorID: w.users[(i*7)%len(w.users)].ID,
					Content: fmt.Sprintf("message %d ✓", i)})
				if err != nil {
					tr.err = err
					return
				}
				tr.mu.Lock()
				tr.sent = append(tr.sent, m)
				tr.mu.Unlock()
			}
		}
	}()
	t.Cleanup(tr.stop)
	return tr
}

func (tr *traffic) stop() {
	tr.cancel()
	<-tr.done
}

func (tr *traffic) count() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.sent)
}

func (tr *traffic) messages() []sim.Message {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]sim.Message(nil), tr.sent...)
}

// verdict compares the topic with what was sent: missing and unexpected
// messages fail the test; duplicates (same message_id, same record) are
// counted and returned.
func verdict(t *testing.T, got map[string][]record, sent []sim.Message) (dups int) {
	t.Helper()
	want := map[string]sim.Message{}
	for _, m := range sent {
		want[m.ID.String()] = m
	}
	missing := 0
	for id, m := range want {
		recs := got[id]
		if len(recs) == 0 {
			if missing < 10 {
				t.Errorf("message %s (%q) is not in Kafka", id, m.Content)
			}
			missing++
			continue
		}
		dups += len(recs) - 1
		for _, r := range recs {
			if r.value != recs[0].value {
				t.Errorf("message %s has two different records:\n%s\n%s", id, recs[0].value, r.value)
			}
			if r.key != m.Author.ID.String() || r.msg.Content == nil || *r.msg.Content != m.Content {
				t.Errorf("message %s: record %s with key %s does not match what was sent", id, r.value, r.key)
			}
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("record for message %s that was never sent", id)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d messages missing from Kafka", missing, len(want))
	}
	return dups
}

// waitAllInKafka polls the topic until every sent message is there.
func (b *broker) waitAllInKafka(t *testing.T, topic string, sent []sim.Message, timeout time.Duration) map[string][]record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := b.readTopic(t, topic)
		n := 0
		for _, m := range sent {
			if len(got[m.ID.String()]) > 0 {
				n++
			}
		}
		if n == len(sent) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func getenv(k string) string { return os.Getenv(k) }
