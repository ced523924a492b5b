package deploy

// Checks of the Dockerfile and .dockerignore.
//
// No Docker engine exists where these tests run, so `docker build` is never
// run. Instead the build stage is replayed here: the build context is the
// repository filtered by .dockerignore (Docker's matching rules), its COPY
// instructions copy from that context, its RUN commands run in sh with the
// stage's ENV and ARG values, and the binary its go build command writes is
// checked: static (no ELF interpreter, no shared libraries), stripped, built
// without cgo and with -trimpath, carrying the version passed as a build
// argument. The final stage is checked statically: non-root USER, CA
// certificates, the entry point. What remains unverified: that the base
// images can be pulled and that BuildKit accepts the file.

import (
	"bytes"
	"crypto/rand"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// ---------------------------------------------------------------- Dockerfile

type dfInstr struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
	line int
}

type dfStage struct {
	from, name string
	line       int
	instrs     []dfInstr
}

// parseDockerfile splits a Dockerfile into stages of instructions, joining
// continuation lines and dropping comments.
func parseDockerfile(src string) ([]*dfStage, error) {
	var stages []*dfStage
	var cur strings.Builder
	start := 0
	flush := func() error {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := dfInstr{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			f = slices.DeleteFunc(f, func(s string) bool { return strings.HasPrefix(s, "--platform=") })
			st := &dfStage{line: start}
			switch {
			case len(f) == 1:
				st.from = f[0]
			case len(f) == 3 && strings.EqualFold(f[1], "AS"):
				st.from, st.name = f[0], f[2]
			default:
				return fmt.Errorf("line %d: FROM %s: want FROM image [AS name]", start, in.args)
			}
			stages = append(stages, st)
			return nil
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				return nil // an ARG before the first FROM
			}
			return fmt.Errorf("line %d: %s before FROM", start, in.cmd)
		}
		st := stages[len(stages)-1]
		st.instrs = append(st.instrs, in)
		return nil
	}
	for i, l := range strings.Split(src, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "#") || (t == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(t, "\\") {
			cur.WriteString(strings.TrimSuffix(t, "\\") + " ")
			continue
		}
		cur.WriteString(t)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("line %d: the file ends inside a continued line", start)
	}
	if len(stages) == 0 {
		return nil, errors.New("no FROM")
	}
	return stages, nil
}

// runOptions splits RUN's leading --mount=/--network=/--security= options
// from its shell command.
func runOptions(args string) (opts []string, command string) {
	for {
		args = strings.TrimLeft(args, " ")
		if !strings.HasPrefix(args, "--") {
			return opts, args
		}
		opt, rest, _ := strings.Cut(args, " ")
		opts = append(opts, opt)
		args = rest
	}
}

// buildStep is the go build command of the build stage.
type buildStep struct {
	stage   *dfStage
	command string // the shell command of the RUN, options removed
	out     string // the path after -o, in the image
}

func findBuild(stages []*dfStage) (buildStep, error) {
	var found []buildStep
	for _, st := range stages {
		for _, in := range st.instrs {
			if in.cmd != "RUN" {
				continue
			}
			_, c := runOptions(in.args)
			if !strings.Contains(c, "go build") {
				continue
			}
			m := regexp.MustCompile(`(?:^|\s)-o\s+(\S+)`).FindStringSubmatch(c)
			if m == nil || !path.IsAbs(m[1]) {
				return buildStep{}, fmt.Errorf("line %d: the go build command must write to an absolute path with -o", in.line)
			}
			found = append(found, buildStep{stage: st, command: c, out: m[1]})
		}
	}
	if len(found) != 1 {
		return buildStep{}, fmt.Errorf("want exactly one RUN with go build, found %d", len(found))
	}
	return found[0], nil
}

func loadDockerfile(t testing.TB) []*dfStage {
	t.Helper()
	stages, err := parseDockerfile(readRepoFile(t, "Dockerfile"))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return stages
}

func goModVersion(t testing.TB) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go ([0-9]+\.[0-9]+)(\.[0-9]+)?\s*$`).FindStringSubmatch(readRepoFile(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod: no go directive")
	}
	return m[1]
}

// TestDockerfileStages checks the stages without building: the Go of
// go.mod, the build command's output copied into a non-root final stage
// that has CA certificates, and the entry point.
func TestDockerfileStages(t *testing.T) {
	stages := loadDockerfile(t)
	b, err := findBuild(stages)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	if b.stage.name == "" {
		t.Fatalf("the build stage (FROM %s) needs a name (AS build)", b.stage.from)
	}
	want := "golang:" + goModVersion(t)
	if img := b.stage.from; img != want && !strings.HasPrefix(img, want+"-") && !strings.HasPrefix(img, want+".") {
		t.Errorf("build stage FROM %s: want %s, the Go of go.mod", img, want)
	}
	for _, must := range []string{"CGO_ENABLED=0", "-trimpath", "$VERSION", "./cmd/cordstream"} {
		if !strings.Contains(b.command, must) {
			t.Errorf("the go build command %q lacks %s", b.command, must)
		}
	}
	versionDeclared := false
	for _, in := range b.stage.instrs {
		if in.cmd == "ARG" && (in.args == "VERSION" || strings.HasPrefix(in.args, "VERSION=")) {
			versionDeclared = true
		}
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			break
		}
	}
	if !versionDeclared {
		t.Errorf("ARG VERSION must be declared in the build stage before go build (else $VERSION is empty)")
	}

	final := stages[len(stages)-1]
	if final == b.stage {
		t.Fatalf("the final stage is the build stage: the image would carry the Go toolchain")
	}
	var user, entry string
	copied := false
	for _, in := range final.instrs {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "COPY":
			f := strings.Fields(in.args)
			if len(f) == 3 && f[0] == "--from="+b.stage.name && f[1] == b.out && f[2] == "/cordstream" {
				copied = true
			}
		case "RUN":
			t.Errorf("line %d: RUN in the final stage: it has no shell", in.line)
		}
	}
	if !copied {
		t.Errorf("the final stage must COPY --from=%s %s /cordstream (the go build output)", b.stage.name, b.out)
	}
	var ep []string
	if err := json.Unmarshal([]byte(entry), &ep); err != nil || !slices.Equal(ep, []string{"/cordstream"}) {
		t.Errorf("ENTRYPOINT %s: want [\"/cordstream\"] (exec form: signals reach cordstream)", entry)
	}
	u, _, _ := strings.Cut(user, ":")
	if u == "" || u == "root" || u == "0" {
		t.Errorf("final stage USER %q: want a non-root user", user)
	}
	switch {
	case strings.HasPrefix(final.from, "gcr.io/distroless/static"):
		// ca-certificates, tzdata and the nonroot user (65532) are in the base.
		if u == "nonroot" && !strings.HasSuffix(final.from, ":nonroot") && !strings.Contains(final.from, ":nonroot@") {
			t.Errorf("USER nonroot exists in the :nonroot variant of distroless, not in %s", final.from)
		}
	case final.from == "scratch":
		if !strings.Contains(fmt.Sprint(final.instrs), "ca-certificates") {
			t.Errorf("a scratch image needs the CA certificates copied in (TLS to Discord and to managed Kafka)")
		}
	default:
		t.Errorf("final stage FROM %s: unknown base; check it has CA certificates and add it here", final.from)
	}
}

func TestParseDockerfile(t *testing.T) {
	src := "# syntax=docker/dockerfile:1\nARG X=1\nFROM golang:1.26 AS build\nRUN --mount=type=cache,target=/x \\\n    go build -o /out/a ./cmd\n\nFROM scratch\nCOPY --from=build /out/a /a\n"
	stages, err := parseDockerfile(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) != 2 || stages[0].name != "build" || stages[1].from != "scratch" {
		t.Fatalf("got %d stages %+v", len(stages), stages)
	}
	b, err := findBuild(stages)
	if err != nil {
		t.Fatal(err)
	}
	if b.command != "go build -o /out/a ./cmd" || b.out != "/out/a" {
		t.Errorf("build step: got %q -> %q", b.command, b.out)
	}
	for _, bad := range []string{"RUN x\n", "FROM a b\n", "FROM a\nRUN x \\\n", "FROM a\nRUN go build ./x\n"} {
		stages, err := parseDockerfile(bad)
		if err == nil {
			_, err = findBuild(stages)
		}
		if err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

// ---------------------------------------------------------------- .dockerignore

type ignoreRule struct {
	re     *regexp.Regexp
	negate bool
	raw    string
}

// parseDockerignore reads .dockerignore the way Docker does: one pattern a
// line, '#' comments, '!' exceptions, paths cleaned and relative to the
// context, '*' and '?' within one path element, '**' across any number;
// the last matching pattern decides, and a pattern matching a directory
// matches everything under it.
func parseDockerignore(src string) ([]ignoreRule, error) {
	var rules []ignoreRule
	for i, l := range strings.Split(src, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		r := ignoreRule{raw: l}
		if strings.HasPrefix(l, "!") {
			r.negate = true
			l = strings.TrimSpace(l[1:])
		}
		l = strings.TrimPrefix(path.Clean(l), "/")
		if strings.ContainsAny(l, "[\\") {
			return nil, fmt.Errorf(".dockerignore line %d: %q: character classes and escapes are not handled by this check", i+1, r.raw)
		}
		var re strings.Builder
		re.WriteString("^")
		for j := 0; j < len(l); {
			switch {
			case strings.HasPrefix(l[j:], "**/"):
				re.WriteString("(.*/)?")
				j += 3
			case strings.HasPrefix(l[j:], "**"):
				re.WriteString(".*")
				j += 2
			case l[j] == '*':
				re.WriteString("[^/]*")
				j++
			case l[j] == '?':
				re.WriteString("[^/]")
				j++
			default:
				re.WriteString(regexp.QuoteMeta(l[j : j+1]))
				j++
			}
		}
		re.WriteString("$")
		r.re = regexp.MustCompile(re.String())
		rules = append(rules, r)
	}
	return rules, nil
}

// ignored reports whether the context path p (slash-separated) is left out.
func ignored(rules []ignoreRule, p string) bool {
	out := false
	for _, r := range rules {
		match := false
		for q := p; q != "." && q != "/" && q != ""; q = path.Dir(q) {
			if r.re.MatchString(q) {
				match = true
				break
			}
		}
		if match {
			out = !r.negate
		}
	}
	return out
}

// mayReinclude reports whether an exception could bring back something
// under the directory dir, so that an ignored directory must still be walked.
func mayReinclude(rules []ignoreRule, dir string) bool {
	for _, r := range rules {
		p := strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(r.raw, "!")), "/")
		if r.negate && (strings.ContainsAny(p[:1], "*?") || strings.HasPrefix(p, dir+"/")) {
			return true
		}
	}
	return false
}

// buildContext copies the files of root that .dockerignore leaves into dst
// and returns their paths.
func buildContext(root, dst string) ([]string, error) {
	src, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		return nil, err
	}
	rules, err := parseDockerignore(string(src))
	if err != nil {
		return nil, err
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if ignored(rules, rel) && !mayReinclude(rules, rel) {
				return fs.SkipDir
			}
			return nil
		}
		if ignored(rules, rel) {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: only regular files are expected in the build context", rel)
		}
		files = append(files, rel)
		return copyFile(p, filepath.Join(dst, filepath.FromSlash(rel)))
	})
	return files, err
}

func copyFile(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func TestDockerignoreMatching(t *testing.T) {
	rules, err := parseDockerignore("# c\n*\n!go.mod\n!internal/\n**/testdata/\n**/*_test.go\n!internal/keep_test.go\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"go.mod", false},
		{"README.md", true},
		{".git/config", true},
		{"internal/x/x.go", false},
		{"internal/x/x_test.go", true},
		{"internal/keep_test.go", false},
		{"internal/x/testdata/a.json", true},
		{"deploy/.env", true},
	} {
		if got := ignored(rules, tc.path); got != tc.want {
			t.Errorf("ignored(%s) = %v, want %v", tc.path, got, tc.want)
		}
	}
	if _, err := parseDockerignore("[a-z]\n"); err == nil {
		t.Errorf("character classes: want an error")
	}
}

// TestDockerignoreContext checks what the real .dockerignore sends to the
// build: everything go build needs, no secrets, no VCS data, no binaries.
func TestDockerignoreContext(t *testing.T) {
	root := repoRoot(t)
	files, err := buildContext(root, t.TempDir())
	if err != nil {
		t.Fatalf("build context: %v", err)
	}
	for _, must := range []string{"go.mod", "go.sum", "cmd/cordstream/main.go"} {
		if !slices.Contains(files, must) {
			t.Errorf("the build context lacks %s", must)
		}
	}
	for _, f := range files {
		base := path.Base(f)
		if strings.HasPrefix(f, ".git/") || base == ".env" || strings.HasSuffix(base, ".pem") || strings.HasSuffix(base, ".key") ||
			base == "cordstream" || strings.HasSuffix(base, ".test") {
			t.Errorf("the build context holds %s", f)
		}
	}
	// Every package the binary imports must be in the context.
	list := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "./cmd/cordstream")
	list.Dir = root
	var stderr bytes.Buffer
	list.Stderr = &stderr
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a module dependency
		}
		rel = filepath.ToSlash(rel)
		if !slices.ContainsFunc(files, func(f string) bool { return path.Dir(f) == rel && strings.HasSuffix(f, ".go") }) {
			t.Errorf("package %s (imported by cmd/cordstream) has no Go files in the build context", rel)
		}
	}
}

// ---------------------------------------------------------------- the build

// built is the replayed build stage: the binary and the version it was
// given. Shared by the tests that need the binary; built once.
type built struct {
	bin, version, ctxDir string
}

var (
	buildOnce   sync.Once
	buildResult built
	buildErr    error
	buildDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// dockerBuild replays the Dockerfile's build stage (see the file comment)
// once and returns the binary.
func dockerBuild(t testing.TB) built {
	t.Helper()
	buildOnce.Do(func() { buildResult, buildErr = replayBuildStage(repoRoot(t)) })
	if buildErr != nil {
		t.Fatalf("the Dockerfile's build stage fails here: %v", buildErr)
	}
	return buildResult
}

func replayBuildStage(root string) (built, error) {
	src, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return built{}, err
	}
	stages, err := parseDockerfile(string(src))
	if err != nil {
		return built{}, err
	}
	step, err := findBuild(stages)
	if err != nil {
		return built{}, err
	}
	if buildDir, err = os.MkdirTemp("", "cordstream-docker-build-"); err != nil {
		return built{}, err
	}
	ctxDir := filepath.Join(buildDir, "context")
	work := filepath.Join(buildDir, "src")
	outDir := filepath.Join(buildDir, "out")
	for _, d := range []string{ctxDir, work, outDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return built{}, err
		}
	}
	if _, err := buildContext(root, ctxDir); err != nil {
		return built{}, fmt.Errorf("build context: %w", err)
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	b := built{bin: filepath.Join(outDir, path.Base(step.out)), version: "v0.0.0-docker-test-" + hex.EncodeToString(rnd[:]), ctxDir: work}

	// The environment of the golang image: no flags, cgo settings or
	// workspaces from this machine.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains([]string{"GOFLAGS", "CGO_ENABLED", "GOOS", "GOARCH", "GOWORK", "GOTOOLCHAIN", "VERSION"}, k)
	})
	env = append(env, "GOWORK=off")
	workdir := ""
	for _, in := range step.stage.instrs {
		switch in.cmd {
		case "WORKDIR":
			if workdir != "" && workdir != in.args {
				return built{}, fmt.Errorf("line %d: one WORKDIR is replayed here, found a second (%s)", in.line, in.args)
			}
			workdir = in.args
		case "ENV":
			k, v, ok := strings.Cut(in.args, "=")
			if !ok || strings.ContainsAny(v, " \"'$") {
				return built{}, fmt.Errorf("line %d: ENV %s: only ENV NAME=value is replayed", in.line, in.args)
			}
			env = append(env, k+"="+v)
		case "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			if k == "VERSION" {
				v = b.version // as docker build --build-arg VERSION=...
			}
			env = append(env, k+"="+v)
		case "COPY":
			f := strings.Fields(in.args)
			if len(f) < 2 || strings.HasPrefix(f[0], "--") {
				return built{}, fmt.Errorf("line %d: COPY %s: only COPY <context paths> <dir> is replayed", in.line, in.args)
			}
			if dest := f[len(f)-1]; dest != "." && dest != "./" && dest != workdir && dest != workdir+"/" {
				return built{}, fmt.Errorf("line %d: COPY to %s: only copies into WORKDIR are replayed", in.line, dest)
			}
			for _, s := range f[:len(f)-1] {
				if err := copyTree(filepath.Join(ctxDir, filepath.FromSlash(path.Clean(s))), work, s == "." || s == "./"); err != nil {
					return built{}, fmt.Errorf("line %d: COPY %s: %w", in.line, s, err)
				}
			}
		case "RUN":
			_, c := runOptions(in.args)
			if strings.Contains(c, "go build") {
				c = strings.Replace(c, step.out, b.bin, 1)
			}
			cmd := exec.Command("sh", "-c", c)
			cmd.Dir = work
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				return built{}, fmt.Errorf("line %d: RUN %s: %v\n%s", in.line, c, err, out)
			}
		default:
			return built{}, fmt.Errorf("line %d: %s in the build stage is not replayed here", in.line, in.cmd)
		}
	}
	return b, nil
}

// copyTree copies the context path from into dir: its contents when whole
// (COPY . .), else the file itself.
func copyTree(from, dir string, whole bool) error {
	fi, err := os.Stat(from)
	if err != nil {
		return fmt.Errorf("not in the build context (.dockerignore?): %w", err)
	}
	if !fi.IsDir() {
		return copyFile(from, filepath.Join(dir, filepath.Base(from)))
	}
	base := from
	if !whole {
		base = filepath.Dir(from)
	}
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		return copyFile(p, filepath.Join(dir, rel))
	})
}

// TestDockerBuild replays the build stage and checks the binary.
func TestDockerBuild(t *testing.T) {
	b := dockerBuild(t)

	f, err := elf.Open(b.bin)
	if err != nil {
		t.Fatalf("the build output is not an ELF binary: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary has an ELF interpreter: it is dynamically linked and will not run on a distroless static base")
		}
		if p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a dynamic section")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("the binary has a symbol table: -ldflags -s is missing")
	}
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			t.Errorf("the binary has DWARF section %s: -ldflags -w is missing", s.Name)
			break
		}
	}

	info, err := buildinfo.ReadFile(b.bin)
	if err != nil {
		t.Fatalf("build info: %v", err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" {
		t.Errorf("built with CGO_ENABLED=%q, want 0", settings["CGO_ENABLED"])
	}
	if settings["-trimpath"] != "true" {
		t.Errorf("built without -trimpath")
	}
	if want := "go" + goModVersion(t); info.GoVersion != want && !strings.HasPrefix(info.GoVersion, want+".") {
		t.Errorf("built with %s, want %s (go.mod)", info.GoVersion, want)
	}
	raw, err := os.ReadFile(b.bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{b.ctxDir, repoRoot(t)} {
		if bytes.Contains(raw, []byte(dir)) {
			t.Errorf("the binary contains the build path %s: -trimpath did not apply", dir)
		}
	}

	out, err := exec.Command(b.bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("cordstream version: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "cordstream "+b.version; got != want && !strings.HasPrefix(got, want+" ") {
		t.Errorf("cordstream version printed %q, want %q: the -X flag does not reach internal/cli.Version", got, want)
	}
}

// TestDockerfileSecrets: no stage takes a secret as a build argument or an
// environment variable (both end up in the image's history or config),
// and the usage the Dockerfile documents passes the token as a file.
func TestDockerfileSecrets(t *testing.T) {
	secretName := regexp.MustCompile(`(?i)token|password|secret`)
	for _, st := range loadDockerfile(t) {
		for _, in := range st.instrs {
			if (in.cmd == "ARG" || in.cmd == "ENV") && secretName.MatchString(in.args) {
				t.Errorf("line %d: %s %s: a secret in a build argument or the environment stays in the image; pass it as a file at run time", in.line, in.cmd, in.args)
			}
		}
	}
	src := readRepoFile(t, "Dockerfile")
	run := regexp.MustCompile(`(?m)^#.*\bbot\b.*--token-file (/run/secrets/\S+)`).FindStringSubmatch(src)
	if run == nil {
		t.Fatal("the Dockerfile's usage shows no bot run with --token-file /run/secrets/...")
	}
	if !strings.Contains(src, "dst="+run[1]) || strings.Contains(src, "-e DISCORD_TOKEN") || strings.Contains(src, "--env DISCORD_TOKEN") {
		t.Errorf("the documented run must mount the token file at %s, and pass no DISCORD_TOKEN variable", run[1])
	}
}
