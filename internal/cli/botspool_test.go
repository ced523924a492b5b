package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cordstream/cordstream/internal/spool"
)

// TestBotSpoolSpace: what the command says about the spool's file system
// at start. A restart on a full file system with messages in the spool goes
// on (delivering them frees space) and says so; with nothing to deliver it
// stops, saying what to do; a file system smaller than --spool-max-bytes
// gets a warning.
func TestBotSpoolSpace(t *testing.T) {
	dir := t.TempDir()
	sp, _, err := spool.Open(dir, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	noSpace := fmt.Errorf("spool: start segment: %w", syscall.ENOSPC)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	err = spoolSpace(sp, spool.Recovery{NoSpace: noSpace}, 1<<30, log)
	var h *botHintError
	if !errors.As(err, &h) || !strings.Contains(err.Error(), "file system is full") || !strings.Contains(err.Error(), dir) ||
		!strings.Contains(h.Hint(), "free space") || !strings.Contains(h.Hint(), "--spool-dir") {
		t.Errorf("full file system, empty spool: %v (hint %q); want an error naming the cause and the directory, and a hint", err, hintOf(err))
	}

	logs.Reset()
	if err := spoolSpace(sp, spool.Recovery{NoSpace: noSpace, Entries: 12}, 1<<30, log); err != nil {
		t.Errorf("full file system, 12 messages in the spool: %v, want the bot to go on", err)
	}
	if l := logs.String(); !strings.Contains(l, "file system is full") || !strings.Contains(l, "messages_waiting=12") || !strings.Contains(l, dir) {
		t.Errorf("full file system, 12 messages in the spool: log %q", l)
	}

	logs.Reset()
	free, err := spool.FreeBytes(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := spoolSpace(sp, spool.Recovery{}, free*2, log); err != nil || !strings.Contains(logs.String(), "less free space than --spool-max-bytes") {
		t.Errorf("--spool-max-bytes above the free space: %v, log %q; want a warning", err, logs.String())
	}
	logs.Reset()
	if err := spoolSpace(sp, spool.Recovery{}, 1<<20, log); err != nil || logs.Len() > 0 {
		t.Errorf("room enough: %v, log %q; want nothing said", err, logs.String())
	}
}

func hintOf(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}

// TestBotTokenFilePermissions: a token file others may read gets a
// warning naming the file and the fix; the token itself shows nowhere.
func TestBotTokenFilePermissions(t *testing.T) {
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	os.WriteFile(notADir, nil, 0o600)
	for _, mode := range []os.FileMode{0o644, 0o600} {
		tok := filepath.Join(dir, fmt.Sprintf("token-%o", mode))
		os.WriteFile(tok, []byte(botTestToken+"\n"), mode)
		os.Chmod(tok, mode)
		// The spool directory is a file: the bot stops right after its log
		// is set up, before any connection.
		code, _, errb := runBotCLI(context.Background(), nil, "--token-file", tok, "--spool-dir", filepath.Join(notADir, "spool"))
		warned := strings.Contains(errb.String(), "readable by other users") && strings.Contains(errb.String(), tok)
		if code == 0 || warned != (mode&0o077 != 0) {
			t.Errorf("token file mode %04o: exit %d, warned %v:\n%s", mode, code, warned, errb)
		}
		if strings.Contains(errb.String(), botTestToken[:10]) {
			t.Errorf("the output shows the token:\n%s", errb)
		}
	}
}
