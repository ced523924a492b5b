package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/bot"
	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/discord/sim"
	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
)

// A token in Discord's shape, for tests that never reach a server.
const botTestToken = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.Zm9vYmFy.c2VjcmV0LXBhcnQtb2YtdGhlLXRlc3QtdG9rZW4"

// lockedBuffer is a goroutine-safe output buffer.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runBotCLI runs "cordstream bot args..." with the environment vars.
func runBotCLI(ctx context.Context, vars map[string]string, args ...string) (int, *lockedBuffer, *lockedBuffer) {
	out, errb := &lockedBuffer{}, &lockedBuffer{}
	e := &env{stdout: out, stderr: errb, getenv: func(k string) string { return vars[k] }}
	return run(ctx, append([]string{"bot"}, args...), e), out, errb
}

func TestBotUsageErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte(" \n"), 0o600)
	good := filepath.Join(dir, "token")
	os.WriteFile(good, []byte(botTestToken+"\n"), 0o600)
	tok := map[string]string{envDiscordToken: botTestToken}
	tests := []struct {
		name string
		vars map[string]string
		args []string
		want []string
	}{
		{"no token", nil, nil, []string{"no Discord bot token: $DISCORD_TOKEN is not set", "https://discord.com/developers/applications", "Bot -> Reset Token"}},
		{"empty token file", nil, []string{"--token-file", empty}, []string{"--token-file " + empty + " is empty"}},
		{"missing token file", nil, []string{"--token-file", filepath.Join(dir, "nope")}, []string{"read the Discord token", "no such file"}},
		{"token twice", tok, []string{"--token-file", good}, []string{"given twice"}},
		{"malformed token", map[string]string{envDiscordToken: "not-a-token"}, nil, []string{"does not look like a bot token"}},
		{"Bot prefix", map[string]string{envDiscordToken: "Bot " + botTestToken}, nil, []string{`starts with "Bot "`}},
		{"content mode", tok, []string{"--content", "redact"}, []string{"keep, drop or hash"}},
		{"guild id", tok, []string{"--guilds", "my-server"}, []string{`--guilds: "my-server" is not a Discord id`, "Copy ID"}},
		{"channel id", tok, []string{"--exclude-channels", "1,#general"}, []string{`--exclude-channels: "#general"`}},
		{"max buffered", tok, []string{"--max-buffered", "0"}, []string{"--max-buffered 0"}},
		{"shutdown timeout", tok, []string{"--shutdown-timeout", "0s"}, []string{"--shutdown-timeout must be positive"}},
		{"api url", tok, []string{"--discord-api-url", "discord.com"}, []string{"--discord-api-url"}},
		{"topic", tok, []string{"--topic", "bad topic"}, []string{"--topic"}},
		{"log level", tok, []string{"--log-level", "loud"}, []string{"--log-level"}},
		{"token as a flag", tok, []string{"--token", botTestToken}, []string{"flag provided but not defined: -token"}},
		{"spool too small", tok, []string{"--spool-max-bytes", "64KiB"}, []string{"--spool-max-bytes 64KiB: must be at least 1MiB"}},
		{"spool size unit", tok, []string{"--spool-max-bytes", "12 parsecs"}, []string{"is not a size", "512MiB"}},
		{"spool sync", tok, []string{"--spool-sync", "sometimes"}, []string{"--spool-sync", "group, always, or a period"}},
		{"spool sync zero", tok, []string{"--spool-sync", "0s"}, []string{"--spool-sync"}},
		{"backfill max age", tok, []string{"--backfill-max-age", "0s"}, []string{"--backfill-max-age must be positive"}},
		{"backfill channels", tok, []string{"--backfill-channels", "-1"}, []string{"--backfill-channels -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errb := runBotCLI(context.Background(), tt.vars, tt.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, errb)
			}
			for _, w := range tt.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr does not contain %q:\n%s", w, errb)
				}
			}
			if strings.Contains(errb.String()+out.String(), "c2VjcmV0LXBhcnQtb2YtdGhlLXRlc3QtdG9rZW4") {
				t.Errorf("the token appears in the output:\n%s", errb)
			}
		})
	}
}

func TestBotReadTokenTrims(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	os.WriteFile(file, []byte("\t "+botTestToken+" \r\n\n"), 0o600)
	e, _, _ := testEnv(nil)
	got, err := (&botFlags{tokenFile: file}).readToken(e)
	if err != nil || got != botTestToken {
		t.Errorf("readToken(file) = %q, %v", got, err)
	}
	e, _, _ = testEnv(map[string]string{envDiscordToken: " " + botTestToken + "\n"})
	got, err = (&botFlags{}).readToken(e)
	if err != nil || got != botTestToken {
		t.Errorf("readToken(env) = %q, %v", got, err)
	}
}

func TestBotHelpNamesDefaults(t *testing.T) {
	code, out, _ := runBotCLI(context.Background(), nil, "--help")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, w := range []string{"DISCORD_TOKEN", "--token-file", "Message Content Intent", "--include-bots", "(default true)", "--max-buffered", "cordstream bot --brokers",
		"--spool-dir", "$XDG_STATE_HOME/cordstream/spool/<topic>", "--spool-max-bytes", "(default 1GiB)", "--spool-sync", "(default group)",
		"--backfill", "--backfill-max-age", "(default 24h0m0s)", "--backfill-channels", "Read Message History", "message_id"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("help does not mention %q", w)
		}
	}
}

func botSim(t *testing.T, mod func(*sim.Config)) *sim.Server {
	t.Helper()
	cfg := sim.Config{PrivilegedIntents: sim.IntentMessageContent, HeartbeatInterval: 200 * time.Millisecond, GatewaySendLimit: 100000}
	if mod != nil {
		mod(&cfg)
	}
	srv := sim.New(cfg)
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// TestBotEndToEnd runs the command against the simulator and the real
// broker, with metrics, then stops it as Ctrl-C would.
func TestBotEndToEnd(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	topic := kafkatest.TopicName(t)
	t.Cleanup(func() { dropTopic(t, topic) })
	srv := botSim(t, nil)
	g := srv.AddGuild("g")
	ch := srv.AddChannel(g.ID, "general")
	alice := srv.AddUser(sim.User{Username: "alice", GlobalName: "Alice"})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code      int
		out, errb *lockedBuffer
	}
	done := make(chan result, 1)
	go func() {
		code, out, errb := runBotCLI(ctx, map[string]string{envDiscordToken: srv.Token()},
			"--brokers", brokers, "--topic", topic, "--discord-api-url", srv.APIURL(), "--metrics", "127.0.0.1:0",
			"--edits-and-deletes", "--log-level", "debug")
		done <- result{code, out, errb}
	}()
	// The command's stderr is not reachable until it returns; the simulator
	// tells when it is connected.
	waitUntil(t, 20*time.Second, func() bool { return srv.Stats().Identifies == 1 })
	var ids []string
	for i := range 10 {
		m, err := srv.Post(sim.MessageSpec{ChannelID: ch.ID, AuthorID: alice.ID, Content: "msg " + string(rune('a'+i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID.String())
	}
	recs := consumeN(t, topic, len(ids))
	for i, r := range recs {
		m, err := chat.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if m.MessageID != ids[i] || string(r.Key) != alice.ID.String() || *m.AuthorGlobalName != "Alice" {
			t.Errorf("record %d = %s key %s, want message %s by alice", i, r.Value, r.Key, ids[i])
		}
	}
	cancel()
	var res result
	select {
	case res = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the bot did not stop within 20s of Ctrl-C")
	}
	stderr := res.errb.String()
	if res.code != exitOK {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", res.code, stderr)
	}
	if !regexp.MustCompile(`bot stopped.*received=10 published=10 failed=0 filtered=0`).MatchString(stderr) {
		t.Errorf("no final counts in stderr:\n%s", stderr)
	}
	addr := regexp.MustCompile(`serving metrics.* addr=(\S+)`).FindStringSubmatch(stderr)
	if addr == nil {
		t.Errorf("the metrics address is not logged:\n%s", stderr)
	}
	if strings.Contains(stderr+res.out.String(), srv.Token()) {
		t.Error("the token appears in the output")
	}
	// The simulator counts the close frame once its reader has seen it.
	waitUntil(t, 5*time.Second, func() bool { return srv.Stats().ClientCloses[1000] == 1 })
}

// TestBotMetricsEndpoint checks /metrics and /healthz while the bot runs.
func TestBotMetricsEndpoint(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	topic := kafkatest.TopicName(t)
	t.Cleanup(func() { dropTopic(t, topic) })
	srv := botSim(t, nil)
	g := srv.AddGuild("g")
	ch := srv.AddChannel(g.ID, "general")
	alice := srv.AddUser(sim.User{Username: "alice"})
	ln := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var errb *lockedBuffer
	var mu sync.Mutex
	go func() {
		code, _, eb := runBotCLI(ctx, map[string]string{envDiscordToken: srv.Token()},
			"--brokers", brokers, "--topic", topic, "--discord-api-url", srv.APIURL(), "--metrics", ln)
		mu.Lock()
		errb = eb
		mu.Unlock()
		done <- code
	}()
	waitUntil(t, 20*time.Second, func() bool { return srv.Stats().Identifies == 1 })
	srv.Post(sim.MessageSpec{ChannelID: ch.ID, AuthorID: alice.ID, Content: "hi"})
	consumeN(t, topic, 1)
	var body string
	waitUntil(t, 5*time.Second, func() bool {
		body = httpGet(t, "http://"+ln+"/metrics")
		return strings.Contains(body, "cordstream_bot_messages_published_total 1")
	})
	for _, w := range []string{
		`cordstream_bot_messages_received_total{kind="create"} 1`,
		"cordstream_bot_records_buffered 0",
		"cordstream_bot_publish_latency_seconds_count 1",
		"cordstream_discord_shards_connected 1",
		"cordstream_discord_identifies_total 1",
		"cordstream_discord_reconnects_all_total 0",
	} {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics lacks %q:\n%s", w, body)
		}
	}
	if strings.Contains(body, srv.Token()) {
		t.Error("the token appears in the metrics")
	}
	if h := httpGet(t, "http://"+ln+"/healthz"); !strings.HasPrefix(h, `{"status":"ok","checks":[{"name":"gateway","ok":true},{"name":"kafka","ok":true}`) {
		t.Errorf("/healthz = %q while healthy", h)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			mu.Lock()
			t.Errorf("exit %d:\n%s", code, errb)
			mu.Unlock()
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the bot did not stop")
	}
}

// TestBotFatalFailures: a rejected token and a disallowed intent end the
// command at once with exit 1, a clear message, no reconnect and no token
// in the output.
func TestBotFatalFailures(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	tests := []struct {
		name  string
		mod   func(*sim.Config)
		token func(*sim.Server) string
		want  []string
	}{
		{"token rejected", nil, func(*sim.Server) string { return botTestToken },
			[]string{"Discord rejected the token", "HTTP 401", "https://discord.com/developers/applications", "Bot -> Reset Token", "$DISCORD_TOKEN"}},
		{"message content intent not enabled", func(c *sim.Config) { c.PrivilegedIntents = 0 }, func(s *sim.Server) string { return s.Token() },
			[]string{"4014", "Message Content intent", "Bot -> Privileged Gateway Intents -> Message Content Intent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := kafkatest.TopicName(t)
			t.Cleanup(func() { dropTopic(t, topic) })
			srv := botSim(t, tt.mod)
			tok := tt.token(srv)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code, out, errb := runBotCLI(ctx, map[string]string{envDiscordToken: tok},
				"--brokers", brokers, "--topic", topic, "--discord-api-url", srv.APIURL(), "--log-level", "debug")
			if ctx.Err() != nil {
				t.Fatal("the command did not end by itself")
			}
			if code != exitFailure {
				t.Errorf("exit code %d, want %d", code, exitFailure)
			}
			for _, w := range tt.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr does not contain %q:\n%s", w, errb)
				}
			}
			if strings.Contains(errb.String()+out.String(), tok) {
				t.Errorf("the token appears in the output:\n%s", errb)
			}
			if st := srv.Stats(); st.Connections > 1 {
				t.Errorf("%d gateway connections, want at most 1 (no reconnect after a fatal error)", st.Connections)
			}
		})
	}
}

func waitUntil(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func consumeN(t *testing.T, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := kafkatest.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", len(out), n)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestBotNoCreateTopic(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	srv := botSim(t, nil)
	topic := kafkatest.TopicName(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, _, errb := runBotCLI(ctx, map[string]string{envDiscordToken: srv.Token()},
		"--brokers", brokers, "--topic", topic, "--discord-api-url", srv.APIURL(), "--no-create-topic")
	if code != exitFailure || !strings.Contains(errb.String(), "does not exist") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 saying the topic does not exist", code, errb)
	}
	if st := srv.Stats(); st.Connections != 0 {
		t.Errorf("%d gateway connections; the bot must not connect to Discord without its topic", st.Connections)
	}
}

// TestRedaction pins the safety net: even if some code path logged the token
// or put it in an error, the output would not show it.
func TestRedaction(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newRedactHandler(slog.NewTextHandler(&buf, nil), botTestToken)).With("preset", "x"+botTestToken)
	log.Info("token "+botTestToken, "plain", botTestToken, "err", errors.New("bad "+botTestToken),
		slog.Group("g", "inner", botTestToken), "n", 5)
	if strings.Contains(buf.String(), botTestToken) {
		t.Errorf("log shows the token:\n%s", buf.String())
	}
	if n := strings.Count(buf.String(), "[REDACTED]"); n != 5 {
		t.Errorf("%d redactions, want 5:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "n=5") {
		t.Errorf("other values lost:\n%s", buf.String())
	}
	err := redactErr(&botHintError{err: errors.New("x " + botTestToken), hint: "h " + botTestToken}, botTestToken)
	var h interface{ Hint() string }
	if strings.Contains(err.Error(), botTestToken) || !errors.As(err, &h) || strings.Contains(h.Hint(), botTestToken) {
		t.Errorf("error or hint shows the token: %v / %v", err, h)
	}
	plain := errors.New("nothing secret")
	if redactErr(plain, botTestToken) != plain {
		t.Error("redactErr wrapped an error without the token")
	}
	// Parts of the token: an error body cut in the middle of it, its
	// secret part alone.
	cut := "GET https://discord.example/api/v10/gateway/bot: HTTP 400: {\"message\": \"bad header Bot " + botTestToken[:20] + "..."
	part := "the third part: " + botTestToken[strings.LastIndex(botTestToken, ".")+1:]
	for _, s := range []string{cut, part} {
		buf.Reset()
		log.Warn("request failed", "err", errors.New(s))
		if err := redactErr(errors.New(s), botTestToken); strings.Contains(err.Error(), botTestToken[:12]) || strings.Contains(buf.String(), botTestToken[:12]) ||
			strings.Contains(err.Error(), botTestToken[len(botTestToken)-12:]) || strings.Contains(buf.String(), botTestToken[len(botTestToken)-12:]) {
			t.Errorf("a part of the token shows: %v / %s", err, buf.String())
		}
	}
}

func TestBotSpoolDirDefault(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		flag string
		want string
	}{
		{"XDG_STATE_HOME", map[string]string{"XDG_STATE_HOME": "/var/state", "HOME": "/home/u"}, "", "/var/state/cordstream/spool/t"},
		{"HOME", map[string]string{"HOME": "/home/u"}, "", "/home/u/.local/state/cordstream/spool/t"},
		{"relative XDG_STATE_HOME ignored", map[string]string{"XDG_STATE_HOME": "state", "HOME": "/home/u"}, "", "/home/u/.local/state/cordstream/spool/t"},
		{"neither", nil, "", ""},
		{"off", map[string]string{"HOME": "/home/u"}, "off", ""},
		{"given", map[string]string{"HOME": "/home/u"}, "/srv/spool", "/srv/spool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{envDiscordToken: botTestToken}
			for k, v := range tt.vars {
				vars[k] = v
			}
			e, _, _ := testEnv(vars)
			fs := newFlagSet("bot", e, "", "")
			f := addBotFlags(fs)
			args := []string{"--topic", "t"}
			if tt.flag != "" {
				args = append(args, "--spool-dir", tt.flag)
			}
			if err := parse(fs, e, args); err != nil {
				t.Fatal(err)
			}
			o, err := f.options(e)
			if err != nil {
				t.Fatal(err)
			}
			if o.spoolDir != tt.want {
				t.Errorf("spool dir = %q, want %q", o.spoolDir, tt.want)
			}
		})
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true}, {"512KiB", 512 << 10, true}, {"64MiB", 64 << 20, true}, {"2GB", 2e9, true},
		{"1 GiB", 1 << 30, true}, {"3TiB", 3 << 40, true}, {"10B", 10, true},
		{"", 0, false}, {"MiB", 0, false}, {"-1", 0, false}, {"1.5GiB", 0, false}, {"7 parsecs", 0, false}, {"99999999999TiB", 0, false},
	}
	for _, tt := range tests {
		var b byteSize
		err := b.Set(tt.in)
		if (err == nil) != tt.ok || (tt.ok && int64(b) != tt.want) {
			t.Errorf("Set(%q) = %d, %v; want %d, ok %v", tt.in, b, err, tt.want, tt.ok)
		}
	}
	for v, want := range map[byteSize]string{1 << 30: "1GiB", 3 << 20: "3MiB", 1000: "1000", 1536: "1536"} {
		if got := v.String(); got != want {
			t.Errorf("String(%d) = %q, want %q", int64(v), got, want)
		}
	}
}

// TestBotSpoolAndBackfill runs the command with a spool: it reports the
// spool, saves the channel positions, and after a restart fetches what was
// sent while it was stopped; a second bot on the same spool is refused.
func TestBotSpoolAndBackfill(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	topic := kafkatest.TopicName(t)
	t.Cleanup(func() { dropTopic(t, topic) })
	// Messages written a minute before they are sent: older than
	// bot.LateArrival at the stop, their position is saved as it is, and
	// the restart fetches none of them again.
	srv := botSim(t, func(c *sim.Config) { c.Clock = func() time.Time { return time.Now().Add(-time.Minute) } })
	g := srv.AddGuild("g")
	ch := srv.AddChannel(g.ID, "general")
	alice := srv.AddUser(sim.User{Username: "alice"})
	dir := t.TempDir()
	args := []string{"--brokers", brokers, "--topic", topic, "--discord-api-url", srv.APIURL(), "--spool-dir", dir, "--spool-sync", "50ms"}
	vars := map[string]string{envDiscordToken: srv.Token()}
	type result struct {
		code int
		errb *lockedBuffer
	}
	start := func() (context.CancelFunc, chan result) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan result, 1)
		go func() {
			code, _, errb := runBotCLI(ctx, vars, args...)
			done <- result{code, errb}
		}()
		return cancel, done
	}
	stop := func(cancel context.CancelFunc, done chan result) result {
		t.Helper()
		cancel()
		select {
		case r := <-done:
			if r.code != exitOK {
				t.Fatalf("exit %d:\n%s", r.code, r.errb)
			}
			return r
		case <-time.After(30 * time.Second):
			t.Fatal("the bot did not stop")
		}
		return result{}
	}
	post := func(n int) []string {
		var ids []string
		for i := range n {
			m, err := srv.Post(sim.MessageSpec{ChannelID: ch.ID, AuthorID: alice.ID, Content: fmt.Sprint("m", i)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID.String())
		}
		return ids
	}

	cancel, done := start()
	waitUntil(t, 20*time.Second, func() bool { return srv.Stats().Identifies == 1 })
	// A second bot on the same spool directory is refused at once.
	code, _, errb := runBotCLI(context.Background(), vars, args...)
	if code != exitFailure || !strings.Contains(errb.String(), "in use by another process") || !strings.Contains(errb.String(), "own --spool-dir") {
		t.Errorf("second bot on the same spool: exit %d\n%s", code, errb)
	}
	first := post(5)
	consumeN(t, topic, 5)
	r := stop(cancel, done)
	for _, w := range []string{"spool opened", "dir=" + dir, "fsync=\"every 50ms\"", "messages_from_previous_run=0", "left_in_spool=0"} {
		if !strings.Contains(r.errb.String(), w) {
			t.Errorf("first run's log lacks %q:\n%s", w, r.errb)
		}
	}
	saved, err := bot.LoadCursors(filepath.Join(dir, bot.CursorsFile), nil, nil)
	if err != nil || len(saved.Channels()) != 1 || fmt.Sprint(saved.Channels()[0].Cursor) != first[4] {
		t.Errorf("saved positions %+v, %v; want the last published id %s", saved.Channels(), err, first[4])
	}

	gap := post(7) // the bot is down
	cancel, done = start()
	waitUntil(t, 20*time.Second, func() bool { return srv.Stats().Identifies == 2 })
	recs := consumeN(t, topic, 12)
	r = stop(cancel, done)
	seen := map[string]int{}
	for _, rec := range recs {
		m, err := chat.Decode(rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		seen[m.MessageID]++
	}
	for _, id := range append(first, gap...) {
		if seen[id] != 1 {
			t.Errorf("message %s in Kafka %d times, want 1", id, seen[id])
		}
	}
	if !strings.Contains(r.errb.String(), "backfilled=7") {
		t.Errorf("second run does not report 7 backfilled messages:\n%s", r.errb)
	}
}
