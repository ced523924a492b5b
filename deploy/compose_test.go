package deploy

// Checks of deploy/docker-compose.yml that need no Docker engine (none exists
// where these tests run, so `docker compose config` and `docker compose up`
// are not run): it parses; its structure is what Compose expects; its Kafka
// broker is configured like the broker every test runs against
// (scripts/kafka); the real Kafka accepts that configuration.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const composePath = "deploy/docker-compose.yml"

// repoRoot returns the repository root (the parent of this package).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found above %s: %v", root, err)
	}
	return root
}

func readRepoFile(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return string(b)
}

func loadCompose(t testing.TB) *yNode {
	t.Helper()
	n, err := parseYAML(readRepoFile(t, composePath))
	if err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	return n
}

// pyYAML parses src with PyYAML and returns it as plain values with every
// scalar as a string (bools as true/false, numbers in Python's spelling).
// errPyYAMLMissing when python3 or PyYAML is not installed.
var errPyYAMLMissing = errors.New("python3 with PyYAML (Debian: python3-yaml) is not installed")

const pyNormalize = `
import json, sys
import yaml
def norm(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                sys.exit("non-string key %r" % (k,))
            out[k] = norm(x)
        return out
    if isinstance(v, list):
        return [norm(x) for x in v]
    if v is None or isinstance(v, str):
        return v
    sys.exit("unexpected YAML type %s" % type(v).__name__)
print(json.dumps(norm(yaml.safe_load(sys.stdin))))
`

var pyYAMLOK = sync.OnceValue(func() bool {
	return exec.Command("python3", "-c", "import yaml").Run() == nil
})

func pyYAML(src string) (any, error) {
	if !pyYAMLOK() {
		return nil, errPyYAMLMissing
	}
	cmd := exec.Command("python3", "-c", pyNormalize)
	cmd.Stdin = strings.NewReader(src)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("PyYAML: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		return nil, fmt.Errorf("PyYAML output: %v", err)
	}
	return v, nil
}

// TestComposeParses parses the compose file with the strict subset parser
// and, where PyYAML is installed, checks that PyYAML reads the same values.
func TestComposeParses(t *testing.T) {
	src := readRepoFile(t, composePath)
	n, err := parseYAML(src)
	if err != nil {
		t.Fatalf("%s does not parse: %v", composePath, err)
	}
	t.Run("PyYAML reads the same", func(t *testing.T) {
		py, err := pyYAML(src)
		if errors.Is(err, errPyYAMLMissing) {
			t.Skipf("cross-check not run: %v", err)
		}
		if err != nil {
			t.Fatalf("%s: %v", composePath, err)
		}
		for _, d := range diffPlain("", n.plain(), py) {
			t.Errorf("the subset parser and PyYAML disagree at %s (quote values YAML 1.1 reads as bools or numbers)", d)
		}
	})
}

// TestParseYAMLAgreesWithPyYAML runs the accepted cases of TestParseYAML
// through PyYAML too, so that the subset parser's reading is checked
// against a full YAML implementation.
func TestParseYAMLAgreesWithPyYAML(t *testing.T) {
	if _, err := pyYAML("a: b\n"); err != nil {
		if errors.Is(err, errPyYAMLMissing) {
			t.Skipf("not run: %v", err)
		}
		t.Fatal(err)
	}
	for _, src := range []string{
		"a: 1\nb: \"x: y # z\"\nc: 'it''s'\nd: plain text # comment\ne:\n",
		"---\ns:\n  x:\n    y: z\n",
		"l:\n  - a\n  - \"b\"\nm:\n- c\n",
		"c: [\"CMD\", 'x', plain, -1, ~]\ne: []\n",
		"t: ${TOKEN:-}\nr: on-failure:5\nv: data:/var/lib\nw: a#b\n",
		"a: # comment\n  b: c\n",
		"l:\n  -\n    a: b\n  - # comment\n    c: d\n",
		"a: \"no\"\nb: '22:22'\nc: 0\nd: 80:80\n",
	} {
		n, err := parseYAML(src)
		if err != nil {
			t.Errorf("parseYAML(%q): %v", src, err)
			continue
		}
		py, err := pyYAML(src)
		if err != nil {
			t.Errorf("PyYAML(%q): %v", src, err)
			continue
		}
		for _, d := range diffPlain("", n.plain(), py) {
			t.Errorf("%q: the subset parser and PyYAML disagree at %s", src, d)
		}
	}
}

// diffPlain lists where two plain values differ, as "path: a vs b".
func diffPlain(path string, a, b any) []string {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		var out []string
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			out = append(out, diffPlain(path+"."+k, am[k], bm[k])...)
		}
		return out
	}
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok && len(as) == len(bs) {
		var out []string
		for i := range as {
			out = append(out, diffPlain(fmt.Sprintf("%s[%d]", path, i), as[i], bs[i])...)
		}
		return out
	}
	if reflect.DeepEqual(a, b) {
		return nil
	}
	return []string{fmt.Sprintf("%s: %#v vs %#v", path, a, b)}
}

// ---------------------------------------------------------------- structure

// service returns the named service or fails.
func service(t testing.TB, compose *yNode, name string) *yNode {
	t.Helper()
	s := compose.get("services", name)
	if s == nil || s.kind != yMap {
		t.Fatalf("%s: no service %q", composePath, name)
	}
	return s
}

// environment returns a service's environment mapping (the list form is
// rejected: the mapping form is what this file uses).
func environment(t testing.TB, svc *yNode, name string) map[string]string {
	t.Helper()
	env := map[string]string{}
	e := svc.get("environment")
	if e == nil {
		return env
	}
	if e.kind != yMap {
		t.Fatalf("service %s: environment must be a mapping", name)
	}
	for _, k := range e.keys {
		v := e.m[k]
		switch v.kind {
		case yScalar:
			env[k] = v.str
		case yNull:
			env[k] = ""
		default:
			t.Fatalf("service %s: environment %s must be a scalar", name, k)
		}
	}
	return env
}

// TestComposeStructure checks what `docker compose config` would reject,
// and the promises of the file: the four services and their order of
// start, no ZooKeeper, a health check, secrets only through interpolation.
func TestComposeStructure(t *testing.T) {
	c := loadCompose(t)
	root := repoRoot(t)

	for _, k := range c.keys {
		if !slices.Contains([]string{"name", "services", "volumes", "networks", "secrets", "configs"}, k) && !strings.HasPrefix(k, "x-") {
			t.Errorf("unknown top-level key %q", k)
		}
	}
	services := c.get("services")
	if services == nil || services.kind != yMap {
		t.Fatalf("no services mapping")
	}
	if got, want := fmt.Sprint(services.keys), "[broker create-topic bot analyzer]"; got != want {
		t.Errorf("services: got %s, want %s", got, want)
	}
	volumes := c.get("volumes")

	for _, name := range services.keys {
		svc := services.m[name]
		if svc.kind != yMap {
			t.Errorf("service %s: not a mapping", name)
			continue
		}
		img := svc.get("image")
		if img == nil || img.kind != yScalar || img.str == "" {
			t.Errorf("service %s: no image", name)
		} else if strings.Contains(strings.ToLower(img.str), "zookeeper") {
			t.Errorf("service %s: image %s: no ZooKeeper (KRaft mode)", name, img.str)
		}
		if b := svc.get("build"); b != nil {
			ctx := b.get("context")
			if ctx == nil || ctx.kind != yScalar {
				t.Errorf("service %s: build.context missing", name)
			} else if got := filepath.Clean(filepath.Join(root, "deploy", ctx.str)); got != root {
				t.Errorf("service %s: build.context %s is %s, want the repository root", name, ctx.str, got)
			}
			df := "Dockerfile"
			if d := b.get("dockerfile"); d != nil {
				df = d.str
			}
			if _, err := os.Stat(filepath.Join(root, df)); err != nil {
				t.Errorf("service %s: build.dockerfile: %v", name, err)
			}
		}
		if deps := svc.get("depends_on"); deps != nil {
			if deps.kind != yMap {
				t.Errorf("service %s: depends_on: use the long form with conditions", name)
			} else {
				for _, dep := range deps.keys {
					if services.get(dep) == nil {
						t.Errorf("service %s depends on unknown service %s", name, dep)
					}
					cond := deps.get(dep, "condition")
					if cond == nil || !slices.Contains([]string{"service_started", "service_healthy", "service_completed_successfully"}, cond.str) {
						t.Errorf("service %s: depends_on %s: condition missing or unknown", name, dep)
					}
				}
			}
		}
		if r := svc.get("restart"); r != nil && !regexp.MustCompile(`^(no|always|unless-stopped|on-failure(:[1-9][0-9]*)?)$`).MatchString(r.str) {
			t.Errorf("service %s: restart %q is not a Compose restart policy", name, r.str)
		}
		for _, p := range mustScalars(t, svc.get("ports"), name, "ports") {
			if !regexp.MustCompile(`^127\.0\.0\.1:[0-9]+:[0-9]+$`).MatchString(p) {
				t.Errorf("service %s: port %q: publish on 127.0.0.1 only (host:container)", name, p)
			}
		}
		for _, v := range mustScalars(t, svc.get("volumes"), name, "volumes") {
			vol, _, ok := strings.Cut(v, ":")
			if !ok || volumes.get(vol) == nil {
				t.Errorf("service %s: volume %q: not a named volume declared under volumes", name, v)
			}
		}
		for k, v := range environment(t, svc, name) {
			if strings.Contains(strings.ToUpper(k), "ZOOKEEPER") {
				t.Errorf("service %s: %s: no ZooKeeper (KRaft mode)", name, k)
			}
			if regexp.MustCompile(`(?i)token|password|secret`).MatchString(k) {
				// A secret comes from the shell or --env-file, never from this file.
				if !regexp.MustCompile(`^\$\{` + regexp.QuoteMeta(k) + `(:?-|:?\?[^}]*)?\}$`).MatchString(v) {
					t.Errorf("service %s: %s=%q: a secret must be ${%s} (or ${%s:-}), never a value in the file", name, k, v, k, k)
				}
			}
		}
	}

	deps := []struct{ svc, dep, cond string }{
		{"create-topic", "broker", "service_healthy"},
		{"bot", "broker", "service_healthy"},
		{"bot", "create-topic", "service_completed_successfully"},
		{"analyzer", "broker", "service_healthy"},
		{"analyzer", "create-topic", "service_completed_successfully"},
	}
	for _, d := range deps {
		got := c.get("services", d.svc, "depends_on", d.dep, "condition")
		if got == nil || got.str != d.cond {
			t.Errorf("%s must depend on %s with condition %s", d.svc, d.dep, d.cond)
		}
	}
	checkTokenSecret(t, c)
	hc, ok := service(t, c, "broker").get("healthcheck", "test").scalars()
	if !ok || len(hc) < 2 || hc[0] != "CMD" {
		t.Errorf("broker: healthcheck.test must be [\"CMD\", ...], got %v", hc)
	}
	if r := c.get("services", "create-topic", "restart"); r == nil || r.str != "no" {
		t.Errorf("create-topic is a one-shot job: restart must be \"no\"")
	}
}

// checkTokenSecret checks how the Discord token reaches the bot: as a file
// secret that docker compose fills from its own environment, mounted in
// the bot only, readable by the image's user only, and read with
// --token-file; never in a container's environment, where docker inspect
// shows it.
func checkTokenSecret(t *testing.T, c *yNode) {
	t.Helper()
	for _, name := range c.get("services").keys {
		for k := range environment(t, service(t, c, name), name) {
			if regexp.MustCompile(`(?i)token|password`).MatchString(k) {
				t.Errorf("service %s: %s is in the container's environment (docker inspect shows it): use a file secret", name, k)
			}
		}
	}
	sec := c.get("secrets", "discord_token")
	if sec == nil || sec.get("environment") == nil || sec.get("environment").str != "DISCORD_TOKEN" {
		t.Errorf("secrets.discord_token must be filled from docker compose's environment: environment: DISCORD_TOKEN")
	}
	if f := c.get("secrets", "discord_token", "file"); f != nil {
		t.Errorf("secrets.discord_token: a file secret is bind-mounted with the host file's owner and mode, which the image's user may not read; use environment")
	}
	for _, name := range c.get("services").keys {
		refs := c.get("services", name, "secrets")
		if name != "bot" {
			if refs != nil {
				t.Errorf("service %s gets secrets: only the bot needs the token", name)
			}
			continue
		}
		if refs == nil || refs.kind != ySeq || len(refs.items) != 1 {
			t.Fatalf("bot: secrets must hold one entry, the token (long form)")
		}
		ref := refs.items[0]
		want := map[string]string{"source": "discord_token", "target": "discord_token", "uid": "65532", "gid": "65532", "mode": "256"}
		for k, v := range want {
			if got := ref.get(k); got == nil || got.str != v {
				t.Errorf("bot: secrets[0].%s must be %s (the image's nonroot user, mode 0400)", k, v)
			}
		}
	}
	bot := service(t, c, "bot")
	args, _ := bot.get("command").scalars()
	if v, ok := flagValue(args, "token-file"); !ok || v != "/run/secrets/discord_token" {
		t.Errorf("bot: --token-file %q, want /run/secrets/discord_token (the secret's path)", v)
	}
}

func mustScalars(t testing.TB, n *yNode, svc, key string) []string {
	t.Helper()
	if n == nil {
		return nil
	}
	s, ok := n.scalars()
	if !ok {
		t.Errorf("service %s: %s must be a list of strings", svc, key)
	}
	return s
}

// TestEnvExample checks the env file template: the token is there, empty,
// and the filled-in copy is git-ignored.
func TestEnvExample(t *testing.T) {
	ex := readRepoFile(t, "deploy/env.example")
	vars := map[string]string{}
	for i, l := range strings.Split(ex, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Errorf("env.example line %d: %q is not NAME=value", i+1, l)
			continue
		}
		vars[k] = v
	}
	if v, ok := vars["DISCORD_TOKEN"]; !ok || v != "" {
		t.Errorf("env.example: want an empty DISCORD_TOKEN= line, got %q (present %v)", v, ok)
	}
	gi := strings.Split(readRepoFile(t, "deploy/.gitignore"), "\n")
	if !slices.Contains(gi, ".env") {
		t.Errorf("deploy/.gitignore must ignore .env (it holds the token)")
	}
}

// ---------------------------------------------------------------- broker

// The apache/kafka image turns KAFKA_* variables into server.properties:
// KAFKA_ is dropped, "_" becomes ".", "__" becomes "_", "___" becomes "-",
// lower case. These variables are read by the launch scripts instead.
var kafkaImageExcludes = []string{"KAFKA_VERSION", "KAFKA_HEAP_OPT", "KAFKA_LOG4J_OPTS", "KAFKA_OPTS",
	"KAFKA_JMX_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_GC_LOG_OPTS", "KAFKA_LOG4J_ROOT_LOGLEVEL",
	"KAFKA_LOG4J_LOGGERS", "KAFKA_TOOLS_LOG4J_LOGLEVEL"}

// kafkaProperty converts one variable name. Names whose conversion the image
// leaves undefined or gets wrong (four or more underscores in a row, a
// one-character word between single underscores) are errors.
func kafkaProperty(env string) (string, error) {
	name := strings.TrimPrefix(env, "KAFKA_")
	var b strings.Builder
	for i := 0; i < len(name); {
		if name[i] != '_' {
			b.WriteByte(name[i])
			i++
			continue
		}
		j := i
		for j < len(name) && name[j] == '_' {
			j++
		}
		switch j - i {
		case 1:
			// The image matches "x_y" pairs left to right without overlap,
			// so a one-character word between single underscores is misread.
			if i >= 2 && name[i-2] == '_' || i == len(name)-1 || i == 0 {
				return "", fmt.Errorf("%s: the image cannot convert this name", env)
			}
			b.WriteByte('.')
		case 2:
			b.WriteByte('_')
		case 3:
			b.WriteByte('-')
		default:
			return "", fmt.Errorf("%s: four or more underscores in a row have no defined meaning", env)
		}
		i = j
	}
	return strings.ToLower(b.String()), nil
}

// composeBrokerProps returns the server.properties the image writes from the
// broker service's environment, and CLUSTER_ID.
func composeBrokerProps(t testing.TB) (props map[string]string, clusterID string) {
	t.Helper()
	c := loadCompose(t)
	env := environment(t, service(t, c, "broker"), "broker")
	props = map[string]string{}
	for k, v := range env {
		switch {
		case k == "CLUSTER_ID":
			clusterID = v
		case strings.HasPrefix(k, "KAFKA_") && !slices.Contains(kafkaImageExcludes, k):
			p, err := kafkaProperty(k)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(v, "=") {
				// The image splits the environment at '=' and drops such values.
				t.Fatalf("broker: %s=%q: the image drops values holding '='", k, v)
			}
			props[p] = v
		default:
			t.Fatalf("broker: unexpected variable %s (neither CLUSTER_ID nor KAFKA_*)", k)
		}
	}
	return props, clusterID
}

func TestKafkaProperty(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"KAFKA_NODE_ID", "node.id"},
		{"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "listener.security.protocol.map"},
		{"KAFKA_LISTENER_NAME_SASL__SSL_SSL_CLIENT_AUTH", "listener.name.sasl_ssl.ssl.client.auth"},
		{"KAFKA_LISTENER_NAME_SASL__SSL_SCRAM___SHA___256_SASL_JAAS_CONFIG", "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config"},
	} {
		if got, err := kafkaProperty(tc.env); err != nil || got != tc.want {
			t.Errorf("kafkaProperty(%s) = %q, %v; want %q", tc.env, got, err, tc.want)
		}
	}
	for _, bad := range []string{"KAFKA_A_B_C", "KAFKA_X____Y", "KAFKA_NODE_", "KAFKA__NODE"} {
		if got, err := kafkaProperty(bad); err == nil {
			t.Errorf("kafkaProperty(%s) = %q, want an error", bad, got)
		}
	}
}

// scriptsKafka runs scripts/kafka's own definitions (everything before its
// command dispatch) followed by shell, in bash, and returns stdout. This
// reads the test broker's settings from the script itself rather than from
// a copy.
func scriptsKafka(t testing.TB, shell string) string {
	t.Helper()
	root := repoRoot(t)
	src := readRepoFile(t, "scripts/kafka")
	cut := strings.Index(src, "\ncase ${1:-} in")
	if cut < 0 {
		t.Fatalf("scripts/kafka: its command dispatch (case ${1:-} in) was not found; update deploy/compose_test.go")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("bash is needed to read scripts/kafka: %v", err)
	}
	cmd := exec.Command("bash", "-c", src[:cut]+"\n"+shell, filepath.Join(root, "scripts/kafka"))
	cmd.Dir = root
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "CORDSTREAM_KAFKA_VERSION=") // the default version is the one pinned
	})
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/kafka definitions + %q: %v\n%s", shell, err, stderr.String())
	}
	return string(out)
}

// testBrokerProps returns the server.properties scripts/kafka writes for the
// test broker (without --secure).
func testBrokerProps(t testing.TB) map[string]string {
	t.Helper()
	out := scriptsKafka(t, `PROPS=$(mktemp); DATA=/data; write_props 0; cat "$PROPS"; rm -f "$PROPS"`)
	return parseProperties(t, out)
}

func parseProperties(t testing.TB, src string) map[string]string {
	t.Helper()
	props := map[string]string{}
	for _, l := range strings.Split(src, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("properties line %q has no '='", l)
		}
		props[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return props
}

type listener struct{ host, port string }

// listeners parses "NAME://host:port,..." into name -> address.
func listeners(t testing.TB, what, v string) map[string]listener {
	t.Helper()
	out := map[string]listener{}
	for _, item := range strings.Split(v, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(item), "://")
		if !ok {
			t.Fatalf("%s: %q is not NAME://host:port", what, item)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%s: %q: %v", what, item, err)
		}
		if _, dup := out[name]; dup {
			t.Fatalf("%s: listener %s twice", what, name)
		}
		out[name] = listener{host, port}
	}
	return out
}

func protocolMap(t testing.TB, v string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, item := range strings.Split(v, ",") {
		k, p, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok {
			t.Fatalf("listener.security.protocol.map: %q is not NAME:PROTOCOL", item)
		}
		out[k] = p
	}
	return out
}

// listenerKeys are compared by meaning, not text: the compose broker serves
// the containers and the host, the test broker loopback only.
var listenerKeys = []string{"listeners", "advertised.listeners", "listener.security.protocol.map", "controller.quorum.voters", "log.dirs"}

// TestComposeBrokerMatchesTestBroker compares the compose broker's
// configuration with the one scripts/kafka writes for the tests: every
// setting is the same (roles, node id, internal topics' replication, no
// automatic topic creation, ...), except the listeners, which may differ in
// host names and ports and add PLAINTEXT_HOST for the host, and the data
// directory.
func TestComposeBrokerMatchesTestBroker(t *testing.T) {
	got, _ := composeBrokerProps(t)
	want := testBrokerProps(t)
	if len(want) < 10 || want["process.roles"] == "" {
		t.Fatalf("scripts/kafka's write_props gave too little: %v", want)
	}

	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if slices.Contains(listenerKeys, k) {
			continue
		}
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			t.Errorf("%s=%s is set for the test broker but not in the compose file (KAFKA_%s)", k, w, strings.ToUpper(strings.ReplaceAll(k, ".", "_")))
		case !wok:
			t.Errorf("%s=%s is in the compose file but not in scripts/kafka: the tests do not prove it", k, g)
		case g != w:
			t.Errorf("%s: compose %q, test broker %q", k, g, w)
		}
	}
	for _, k := range listenerKeys {
		if got[k] == "" {
			t.Errorf("%s is not set in the compose file", k)
		}
	}
	if t.Failed() {
		return
	}

	// Listeners: every listener of the test broker exists with the same
	// protocol; the only extra one is PLAINTEXT_HOST, plain text too.
	gl, wl := listeners(t, "compose listeners", got["listeners"]), listeners(t, "test listeners", want["listeners"])
	gp, wp := protocolMap(t, got["listener.security.protocol.map"]), protocolMap(t, want["listener.security.protocol.map"])
	for name := range wl {
		if _, ok := gl[name]; !ok {
			t.Errorf("listener %s of the test broker is missing", name)
		}
		if gp[name] != wp[name] {
			t.Errorf("listener %s: protocol %q, test broker %q", name, gp[name], wp[name])
		}
	}
	for name, l := range gl {
		if _, ok := wl[name]; !ok && !(name == "PLAINTEXT_HOST" && gp[name] == "PLAINTEXT") {
			t.Errorf("listener %s is not one the tests prove", name)
		}
		if gp[name] == "" {
			t.Errorf("listener %s has no protocol in listener.security.protocol.map", name)
		}
		if l.host != "" && l.host != "0.0.0.0" {
			t.Errorf("listener %s binds %s: in a container, bind every interface (empty host)", name, l.host)
		}
	}
	for name := range gp {
		if _, ok := gl[name]; !ok {
			t.Errorf("listener.security.protocol.map names %s, which is not a listener", name)
		}
	}
	// Advertised: the same listeners as the test broker advertises, plus
	// PLAINTEXT_HOST, each on its listener's port.
	ga, wa := listeners(t, "compose advertised.listeners", got["advertised.listeners"]), listeners(t, "test advertised.listeners", want["advertised.listeners"])
	for name := range wa {
		if _, ok := ga[name]; !ok {
			t.Errorf("advertised listener %s of the test broker is missing", name)
		}
	}
	for name, a := range ga {
		l, ok := gl[name]
		switch {
		case !ok:
			t.Errorf("advertised listener %s is not a listener", name)
		case a.port != l.port:
			t.Errorf("advertised listener %s: port %s, but it listens on %s", name, a.port, l.port)
		case a.host == "" || a.host == "0.0.0.0":
			t.Errorf("advertised listener %s: %q is not an address a client can dial", name, a.host)
		}
	}
	if ga["PLAINTEXT"].host != "broker" {
		t.Errorf("PLAINTEXT must advertise the service name broker, got %q", ga["PLAINTEXT"].host)
	}
	if h := ga["PLAINTEXT_HOST"]; h.host != "localhost" {
		t.Errorf("PLAINTEXT_HOST must advertise localhost, got %q", h.host)
	}
	// Quorum: the same voters, on the controller listener of the broker service.
	gv, wv := strings.Split(got["controller.quorum.voters"], ","), strings.Split(want["controller.quorum.voters"], ",")
	if len(gv) != len(wv) {
		t.Fatalf("controller.quorum.voters: %d voters, test broker %d", len(gv), len(wv))
	}
	for i := range gv {
		gid, gaddr, _ := strings.Cut(gv[i], "@")
		wid, _, _ := strings.Cut(wv[i], "@")
		if gid != wid || gid != got["node.id"] {
			t.Errorf("controller.quorum.voters: voter id %s, test broker %s, node.id %s", gid, wid, got["node.id"])
		}
		host, port, err := net.SplitHostPort(gaddr)
		if err != nil {
			t.Fatalf("controller.quorum.voters %q: %v", gv[i], err)
		}
		ctl := gl[got["controller.listener.names"]]
		if host != "broker" || port != ctl.port {
			t.Errorf("controller.quorum.voters: voter at %s, want broker:%s (the controller listener)", gaddr, ctl.port)
		}
	}
}

// TestComposeBrokerService checks the rest of the broker service: the image
// is the Kafka version the tests run, CLUSTER_ID is a Kafka cluster id, the
// health check and the host port use the advertised listeners, and the data
// directory is the volume.
func TestComposeBrokerService(t *testing.T) {
	c := loadCompose(t)
	b := service(t, c, "broker")
	props, clusterID := composeBrokerProps(t)

	version := strings.TrimSpace(scriptsKafka(t, `echo "$KAFKA_VERSION"`))
	if !regexp.MustCompile(`^4\.[0-9]+\.[0-9]+$`).MatchString(version) {
		t.Fatalf("scripts/kafka's KAFKA_VERSION %q is not a Kafka 4.x version", version)
	}
	if got, want := b.get("image").str, "apache/kafka:"+version; got != want {
		t.Errorf("broker image %s, want %s (scripts/kafka's version)", got, want)
	}
	if id, err := base64.RawURLEncoding.DecodeString(clusterID); err != nil || len(id) != 16 || len(clusterID) != 22 {
		t.Errorf("CLUSTER_ID %q is not a Kafka cluster id (22 characters of URL-safe base64, 16 bytes): %v", clusterID, err)
	}
	if props["process.roles"] != "broker,controller" {
		t.Errorf("process.roles %q: want broker,controller (KRaft, one combined node)", props["process.roles"])
	}

	adv := listeners(t, "advertised.listeners", props["advertised.listeners"])
	hc, _ := b.get("healthcheck", "test").scalars()
	if i := slices.Index(hc, "--bootstrap-server"); i < 0 || i+1 >= len(hc) {
		t.Errorf("broker healthcheck %v: want --bootstrap-server <an advertised listener>", hc)
	} else if hp := hc[i+1]; hp != net.JoinHostPort(adv["PLAINTEXT"].host, adv["PLAINTEXT"].port) {
		t.Errorf("broker healthcheck dials %s, want the PLAINTEXT listener the services use (%s:%s)", hp, adv["PLAINTEXT"].host, adv["PLAINTEXT"].port)
	}
	if !strings.HasPrefix(hc[min(1, len(hc)-1)], "/opt/kafka/bin/") {
		t.Errorf("broker healthcheck %v: want a tool of the image under /opt/kafka/bin", hc)
	}

	// Host clients are sent to the advertised PLAINTEXT_HOST address, so
	// that port must be published on the same host port.
	host := adv["PLAINTEXT_HOST"]
	ports, _ := b.get("ports").scalars()
	if !slices.Contains(ports, "127.0.0.1:"+host.port+":"+listeners(t, "listeners", props["listeners"])["PLAINTEXT_HOST"].port) {
		t.Errorf("broker ports %v: want 127.0.0.1:%s:<PLAINTEXT_HOST port> (clients on the host are sent to localhost:%s)", ports, host.port, host.port)
	}
	vols, _ := b.get("volumes").scalars()
	if !slices.ContainsFunc(vols, func(v string) bool { return strings.HasSuffix(v, ":"+props["log.dirs"]) }) {
		t.Errorf("broker: log.dirs %s is not on a volume (%v): data would be lost with the container", props["log.dirs"], vols)
	}
	if p, err := strconv.Atoi(props["node.id"]); err != nil || p < 0 {
		t.Errorf("node.id %q", props["node.id"])
	}
}

// TestComposeBrokerConfigAcceptedByKafka formats KRaft storage with the
// compose broker's configuration, using the Kafka jars scripts/kafka
// resolved: Kafka's own validation of the configuration (roles, listeners,
// quorum, ...) runs on it, as it does when the image formats its storage.
func TestComposeBrokerConfigAcceptedByKafka(t *testing.T) {
	lib := strings.TrimSpace(scriptsKafka(t, `echo "$LIB"`))
	if _, err := os.Stat(filepath.Join(lib, ".complete")); err != nil {
		msg := fmt.Sprintf("the Kafka jars are not in %s: run scripts/kafka start (or scripts/test) first", lib)
		if os.Getenv("CORDSTREAM_REQUIRE_KAFKA") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatalf("java is needed to run Kafka's StorageTool: %v", err)
	}
	props, clusterID := composeBrokerProps(t)
	dir := t.TempDir()
	props["log.dirs"] = filepath.Join(dir, "data")
	var b strings.Builder
	for k, v := range props {
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	cfg := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(java, "-Xmx256m", "-cp", filepath.Join(lib, "*"), "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
		"kafka.tools.StorageTool", "format", "--cluster-id", clusterID, "--config", cfg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("Kafka rejects the compose broker's configuration: %v\n%s", err, out)
	}
	meta, err := os.ReadFile(filepath.Join(dir, "data", "meta.properties"))
	if err != nil {
		t.Fatalf("no meta.properties after formatting: %v\n%s", err, out)
	}
	m := parseProperties(t, string(meta))
	if m["cluster.id"] != clusterID || m["node.id"] != props["node.id"] {
		t.Errorf("meta.properties: cluster.id %q node.id %q, want %q %q", m["cluster.id"], m["node.id"], clusterID, props["node.id"])
	}
}
