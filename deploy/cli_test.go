package deploy

// The cordstream command lines of deploy/docker-compose.yml, checked with
// the binary the Dockerfile's build command produces (TestDockerBuild):
// every flag parses, and the services, run on this machine against the test
// broker instead of in containers, do what the compose file promises.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/kafka"
	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
	"github.com/cordstream/cordstream/internal/testio"
)

// composeCommand is one cordstream service of the compose file.
type composeCommand struct {
	service string
	args    []string          // the command, without the program name
	env     map[string]string // the environment as written (before interpolation)
}

// cordstreamServices returns the services that run the image built from
// the Dockerfile, in file order.
func cordstreamServices(t testing.TB) []composeCommand {
	t.Helper()
	c := loadCompose(t)
	var out []composeCommand
	for _, name := range c.get("services").keys {
		svc := c.get("services", name)
		if svc.get("build") == nil {
			continue
		}
		args, ok := svc.get("command").scalars()
		if !ok || len(args) == 0 {
			t.Fatalf("service %s: command must be a list of strings (exec form)", name)
		}
		out = append(out, composeCommand{service: name, args: args, env: environment(t, svc, name)})
	}
	if len(out) == 0 {
		t.Fatalf("%s: no service builds the Dockerfile", composePath)
	}
	return out
}

// flagValue returns the value of --name in args ("--name v" or "--name=v").
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// withFlag returns args with --name set to value, replacing it or appending it.
func withFlag(args []string, name, value string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if a == "--"+name && i+1 < len(out) {
			out[i+1] = value
			return out
		}
		if strings.HasPrefix(a, "--"+name+"=") {
			out[i] = "--" + name + "=" + value
			return out
		}
	}
	return append(out, "--"+name, value)
}

// envFlags turns CORDSTREAM_* variables into the flags they stand for
// (CORDSTREAM_STARTING_OFFSETS=x is --starting-offsets=x).
func envFlags(env map[string]string) []string {
	var out []string
	for k, v := range env {
		if name, ok := strings.CutPrefix(k, "CORDSTREAM_"); ok {
			out = append(out, "--"+strings.ToLower(strings.ReplaceAll(name, "_", "-"))+"="+v)
		}
	}
	slices.Sort(out)
	return out
}

// cleanEnv is this process's environment without cordstream settings or a
// Discord token, which would change what the commands do.
func cleanEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "CORDSTREAM_") || strings.HasPrefix(kv, "DISCORD_TOKEN=")
	})
}

// checkParses runs bin with args, then --help: the flag parser reads every
// flag and value before it reaches --help, so an unknown flag, a bad value
// or a stray argument exits 2 while a good command line prints the usage
// and exits 0. A flag missing its value would take --help as its value and
// the command would run: the time limit turns that into a failure.
func checkParses(bin string, args []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(slices.Clone(args), "--help")...)
	cmd.Env = cleanEnv()
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("cordstream %s --help still ran after 20s: does a flag lack its value?", strings.Join(args, " "))
	}
	if err != nil {
		return fmt.Errorf("cordstream %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	sub := args[0]
	if sub == "topics" && len(args) > 1 {
		sub += " " + args[1]
	}
	if !strings.Contains(stdout.String(), "Usage: cordstream "+sub+" ") {
		return fmt.Errorf("cordstream %s --help printed no usage of %q:\n%s", strings.Join(args, " "), sub, stdout.String())
	}
	return nil
}

// TestComposeCommandLinesParse checks every cordstream command line of the
// compose file (flags and CORDSTREAM_* variables) with the real CLI.
func TestComposeCommandLinesParse(t *testing.T) {
	bin := dockerBuild(t).bin
	for _, c := range cordstreamServices(t) {
		t.Run(c.service, func(t *testing.T) {
			if err := checkParses(bin, append(slices.Clone(c.args), envFlags(c.env)...)); err != nil {
				t.Errorf("service %s: %v", c.service, err)
			}
		})
	}
	// The check itself must catch mistakes.
	for _, bad := range [][]string{
		{"bot", "--brokers", "broker:19092", "--no-such-flag"},
		{"analyze", "--window", "one minute"},
		{"analyze", "--trigger", "soon"},
		{"topics", "create", "--partitions", "one"},
		{"bot", "--topic", "a", "stray"},
		{"no-such-command"},
	} {
		if err := checkParses(bin, bad); err == nil {
			t.Errorf("checkParses accepted %q", bad)
		}
	}
}

// TestComposeSettingsAgree checks that the services agree with each other
// and with the broker: one topic, the in-network listener.
func TestComposeSettingsAgree(t *testing.T) {
	props, _ := composeBrokerProps(t)
	adv := listeners(t, "advertised.listeners", props["advertised.listeners"])["PLAINTEXT"]
	inNetwork := net.JoinHostPort(adv.host, adv.port)
	topics := map[string]bool{}
	for _, c := range cordstreamServices(t) {
		b, ok := flagValue(c.args, "brokers")
		if !ok || b != inNetwork {
			t.Errorf("service %s: --brokers %q, want %s (the broker's PLAINTEXT listener inside the network)", c.service, b, inNetwork)
		}
		tp, ok := flagValue(c.args, "topic")
		if !ok {
			t.Errorf("service %s: no --topic", c.service)
		}
		topics[tp] = true
	}
	if len(topics) != 1 || !topics["discord_messages"] {
		t.Errorf("topics used: %v; want discord_messages everywhere", topics)
	}
	create := cordstreamServices(t)[0]
	if create.service != "create-topic" || !slices.Equal(create.args[:2], []string{"topics", "create"}) {
		t.Fatalf("the first cordstream service must be create-topic running topics create, got %s %v", create.service, create.args)
	}
	for flag, want := range map[string]string{"partitions": "1", "replication-factor": "1"} {
		if v, _ := flagValue(create.args, flag); v != want {
			t.Errorf("create-topic --%s %q, want %s (the original pipeline's topic, on one broker)", flag, v, want)
		}
	}
}

// TestComposeStateOnVolumes checks that every directory a cordstream
// service writes (the flags whose usage names a directory, such as the
// bot's --spool-dir) is set explicitly to a path on one of the service's
// volumes: the containers have a read-only root file system, and state kept
// in a container's own layer would be lost with it.
func TestComposeStateOnVolumes(t *testing.T) {
	bin := dockerBuild(t).bin
	c := loadCompose(t)
	dirFlag := regexp.MustCompile(`(?m)^  --([a-z0-9-]+) (directory|dir)$`)
	checked := 0
	for _, s := range cordstreamServices(t) {
		help := []string{s.args[0], "--help"}
		if s.args[0] == "topics" {
			help = []string{s.args[0], s.args[1], "--help"}
		}
		out, err := exec.Command(bin, help...).Output()
		if err != nil {
			t.Fatalf("cordstream %s: %v", strings.Join(help, " "), err)
		}
		var targets []string
		vols, _ := c.get("services", s.service, "volumes").scalars()
		for _, v := range vols {
			if parts := strings.Split(v, ":"); len(parts) >= 2 {
				targets = append(targets, parts[1])
			}
		}
		if ro := c.get("services", s.service, "read_only"); ro == nil || ro.str != "true" {
			t.Errorf("service %s: read_only: true expected (nothing is written outside volumes)", s.service)
		}
		args := append(slices.Clone(s.args), envFlags(s.env)...)
		for _, m := range dirFlag.FindAllStringSubmatch(string(out), -1) {
			checked++
			v, ok := flagValue(args, m[1])
			if !ok {
				t.Errorf("service %s: --%s is not set: its default is not on a volume of the read-only container", s.service, m[1])
				continue
			}
			if !slices.ContainsFunc(targets, func(tg string) bool { return v == tg || strings.HasPrefix(v, strings.TrimSuffix(tg, "/")+"/") }) {
				t.Errorf("service %s: --%s %s is not on one of its volumes %v", s.service, m[1], v, targets)
			}
		}
	}
	if checked == 0 {
		t.Errorf("no directory flag found in any usage text: the bot's --spool-dir at least was expected; has the usage format changed?")
	}
}

// ---------------------------------------------------------------- live run

// proc is a cordstream process started by a test; the test waits for it.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr *testio.Buffer
	done           chan struct{}
	err            error
}

func start(t *testing.T, name, bin string, args []string, env ...string) *proc {
	t.Helper()
	p := &proc{name: name, stdout: &testio.Buffer{}, stderr: &testio.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(cleanEnv(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", p.name, tail(p.stdout.String()), p.name, tail(p.stderr.String()))
		}
	})
	return p
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 40 {
		lines = append([]string{"..."}, lines[len(lines)-40:]...)
	}
	return strings.Join(lines, "\n")
}

// stop sends SIGINT (what docker compose stop does is SIGTERM; both end
// the same context) and waits; it returns the exit error.
func (p *proc) stop(t *testing.T, timeout time.Duration) error {
	t.Helper()
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %v of SIGINT", p.name, timeout)
	}
}

// waitFor polls until cond holds, the process exits, or the timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, procs ...*proc) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		for _, p := range procs {
			select {
			case <-p.done:
				t.Fatalf("waiting for %s: %s exited: %v", what, p.name, p.err)
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestComposeServicesRun runs the compose file's cordstream command lines,
// unchanged except for the addresses (the test broker for broker:19092, a
// topic and consumer group of this test, metrics on a free port) and a
// Discord simulator in place of Discord: create-topic exits 0, the bot
// publishes with --no-create-topic, the analyzer prints the seed's table
// with counts, and both stop cleanly on a signal.
func TestComposeServicesRun(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	bin := dockerBuild(t).bin
	topic := kafkatest.TopicName(t)
	t.Cleanup(func() {
		cl := kafkatest.Client(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var nf *kafka.TopicNotFoundError
		if err := kafka.DeleteTopic(ctx, cl, topic); err != nil && !errors.As(err, &nf) {
			t.Logf("delete topic %s: %v", topic, err)
		}
	})

	cmds := map[string]composeCommand{}
	for _, c := range cordstreamServices(t) {
		args := withFlag(c.args, "brokers", brokers)
		args = withFlag(args, "topic", topic)
		if _, ok := flagValue(args, "metrics"); ok {
			args = withFlag(args, "metrics", "127.0.0.1:0")
		}
		if args[0] == "analyze" {
			args = withFlag(args, "group", topic)
		}
		if _, ok := flagValue(args, "spool-dir"); ok {
			args = withFlag(args, "spool-dir", t.TempDir())
		}
		c.args = append(args, envFlags(c.env)...)
		cmds[c.service] = c
	}
	for _, name := range []string{"create-topic", "bot", "analyzer"} {
		if _, ok := cmds[name]; !ok {
			t.Fatalf("no cordstream service %s", name)
		}
	}

	// create-topic: a one-shot job that must succeed (service_completed_successfully).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, cmds["create-topic"].args...).CombinedOutput()
	if err != nil {
		t.Fatalf("create-topic: cordstream %s: %v\n%s", strings.Join(cmds["create-topic"].args, " "), err, out)
	}

	sim := start(t, "sim", bin, []string{"sim", "--listen", "127.0.0.1:0", "--rate", "40", "--seed", "7"})
	var apiURL, token string
	waitFor(t, 15*time.Second, "simulator address and token", func() bool {
		s := sim.stdout.String()
		if m := regexp.MustCompile(`REST API: (\S+)`).FindStringSubmatch(s); m != nil {
			apiURL = m[1]
		}
		if m := regexp.MustCompile(`DISCORD_TOKEN='([^']+)'`).FindStringSubmatch(s); m != nil {
			token = m[1]
		}
		return apiURL != "" && token != ""
	}, sim)

	analyzer := start(t, "analyzer", bin, cmds["analyzer"].args)
	botArgs := append(slices.Clone(cmds["bot"].args), "--discord-api-url", apiURL)
	// The token secret as compose mounts it: a file only the bot's user
	// reads, at the path --token-file names.
	secret := filepath.Join(t.TempDir(), "discord_token")
	if err := os.WriteFile(secret, []byte(token), 0o400); err != nil {
		t.Fatal(err)
	}
	if _, ok := flagValue(botArgs, "token-file"); !ok {
		t.Fatal("the bot's command line has no --token-file")
	}
	botArgs = withFlag(botArgs, "token-file", secret)
	var botEnv []string
	for k, v := range cmds["bot"].env {
		if !strings.HasPrefix(k, "CORDSTREAM_") {
			botEnv = append(botEnv, k+"="+v)
		}
	}
	bot := start(t, "bot", bin, botArgs, botEnv...)

	// A table row of the console sink: |{window start, window end}|author|count|
	row := regexp.MustCompile(`(?m)^\|\{\d{4}-\d\d-\d\d \d\d:\d\d:\d\d, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\}\s*\|[^|]+\|\d+\s*\|$`)
	waitFor(t, 90*time.Second, "analyzer batch with counts", func() bool { return row.MatchString(analyzer.stdout.String()) }, analyzer, bot, sim)
	if !strings.Contains(analyzer.stdout.String(), "|window") || !strings.Contains(analyzer.stdout.String(), "|author_name") {
		t.Errorf("the analyzer's table lacks the window and author_name columns:\n%s", tail(analyzer.stdout.String()))
	}

	t.Logf("analyzer output:\n%s", tail(analyzer.stdout.String()))
	if err := bot.stop(t, 30*time.Second); err != nil {
		t.Errorf("bot: %v", err)
	}
	if err := analyzer.stop(t, 30*time.Second); err != nil {
		t.Errorf("analyzer: %v", err)
	}
	if err := sim.stop(t, 15*time.Second); err != nil {
		t.Logf("sim: %v", err)
	}
	published := regexp.MustCompile(`published=(\d+)`).FindStringSubmatch(bot.stderr.String())
	if published == nil || published[1] == "0" {
		sc := bufio.NewScanner(strings.NewReader(bot.stderr.String()))
		var last string
		for sc.Scan() {
			last = sc.Text()
		}
		t.Errorf("the bot's exit summary shows no published messages; last log line: %s", last)
	}
	if strings.Contains(bot.stderr.String(), "readable by other users") {
		t.Errorf("the bot warned about the token file's permissions, which compose sets to 0400")
	}
	t.Logf("bot log:\n%s", tail(bot.stderr.String()))
}
