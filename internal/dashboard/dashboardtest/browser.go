// Package dashboardtest drives the dashboard's page in a real, headless
// Chromium for tests: the package's own page test and the end-to-end tests
// of the analyzer and the demo.
package dashboardtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium returns the path of a Chromium to drive: $CORDSTREAM_CHROMIUM, or
// chromium (Debian's package, which scripts/test installs) on the PATH. The
// test skips without one, and fails with CORDSTREAM_REQUIRE_KAFKA=1 (the
// setting under which every test must run).
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CORDSTREAM_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found (apt-get install chromium, or set CORDSTREAM_CHROMIUM to a Chrome or Chromium binary)"
	if os.Getenv("CORDSTREAM_REQUIRE_KAFKA") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Page is what the page shows, read from its DOM (Read).
type Page struct {
	Batch  string `json:"batch"`
	Window string `json:"window"`
	Total  float64
	Keys   string
	Rows   []struct {
		ID    string  `json:"id"`
		Rank  int     `json:"rank"`
		Label string  `json:"label"`
		Value float64 `json:"value"`
	} `json:"rows"`
	Totals []struct {
		Start string  `json:"start"`
		Value float64 `json:"value"`
	} `json:"totals"`
	Lag     string `json:"lag"`
	Counted string `json:"counted"`
	Late    string `json:"late"`
	Events  int    `json:"events"`
	Loads   int    `json:"loads"`
}

const readPage = `(() => {
  const t = document.getElementById("board-total");
  const text = (id) => document.getElementById(id).textContent;
  return {
    batch: document.getElementById("batch-id").dataset.batch,
    window: t.dataset.window,
    total: Number(t.dataset.value),
    keys: text("board-keys"),
    rows: [...document.querySelectorAll("#board tbody tr")].map((tr) => ({
      id: tr.dataset.id, rank: Number(tr.cells[0].textContent), label: tr.cells[1].textContent, value: Number(tr.dataset.value),
    })),
    totals: [...document.querySelectorAll("#totals-table tbody tr")].map((tr) => ({ start: tr.dataset.start, value: Number(tr.dataset.value) })),
    lag: text("t-lag"), counted: text("t-counted"), late: text("t-late"),
    events: Number(document.body.dataset.events || 0),
    loads: Number(document.body.dataset.loads || 0),
  };
})()`

// Digits keeps the digits of a number as the page writes it ("1,234").
func Digits(s string) string { return nonDigits.ReplaceAllString(s, "") }

var nonDigits = regexp.MustCompile(`\D`)

// Browser is one headless Chromium with one tab.
type Browser struct {
	t     testing.TB
	Ctx   context.Context // the tab's: pass it to chromedp.Run
	close func()

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// Open starts a browser that lives until Close, the end of the test or
// timeout. Close it (defer b.Close()) before the servers it reads from: a
// server waits for the browser's open event streams when it closes.
// Everything the page writes to its console is kept: CheckConsole fails the
// test on an error (a script error, a CSP violation, a failed load).
func Open(t testing.TB, timeout time.Duration) *Browser {
	t.Helper()
	exe := Chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	b := &Browser{t: t, Ctx: bctx, close: func() { cancelBrowser(); cancelAlloc() }}
	cctx, stopConsole := context.WithCancel(bctx)
	t.Cleanup(stopConsole)
	messages := chromedp.Console(cctx) // starts the browser
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// Close ends the browser.
func (b *Browser) Close() { b.close() }

// CheckConsole fails the test for every error the page logged so far.
func (b *Browser) CheckConsole() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			b.t.Errorf("page console: %s (%s:%d)", m, m.URL, m.Line)
		}
	}
}

// Run runs an action in the tab, failing the test if it fails.
func (b *Browser) Run(what string, a chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if _, err := chromedp.Run(b.Ctx, a); err != nil {
		b.CheckConsole()
		b.t.Fatalf("%s: %v", what, err)
	}
}

// Poll waits until the page's expression is true.
func (b *Browser) Poll(what, expr string, timeout time.Duration) {
	b.t.Helper()
	if _, err := chromedp.Run(b.Ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		b.CheckConsole()
		b.t.Fatalf("%s: %v", what, err)
	}
}

// WaitBatch waits until the page is ready and shows batch id with a
// leaderboard.
func (b *Browser) WaitBatch(id int64, timeout time.Duration) {
	b.t.Helper()
	b.Poll(fmt.Sprintf("the page did not show batch %d", id),
		fmt.Sprintf(`document.body.dataset.ready === "1" && document.getElementById("batch-id").dataset.batch === "%d" && document.querySelectorAll("#board tbody tr").length > 0`, id), timeout)
}

// Read returns what the page shows now.
func (b *Browser) Read() Page {
	b.t.Helper()
	p, err := chromedp.Run(b.Ctx, chromedp.Evaluate[Page](readPage))
	if err != nil {
		b.t.Fatal(err)
	}
	return p
}

// Shot saves a screenshot of the whole page as name in the test's artifact
// directory (kept with go test -artifacts -outputdir DIR) and, when
// CORDSTREAM_SCREENSHOT_DIR is set, in that directory too.
func (b *Browser) Shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	dirs := []string{b.t.ArtifactDir()}
	if d := os.Getenv("CORDSTREAM_SCREENSHOT_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(p, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
		b.t.Logf("screenshot: %s", p)
	}
}

// Navigate opens url in a viewport of width x height.
func Navigate(url string, width, height int64) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.EmulateViewport(width, height), chromedp.Navigate(url))
}
