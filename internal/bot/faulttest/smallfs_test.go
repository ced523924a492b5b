package faulttest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
)

// envUserNS marks the copy of the test binary that runs inside a user and
// mount namespace of its own (see smallFS).
const envUserNS = "CORDSTREAM_FAULTTEST_USERNS"

// smallFS returns a directory on a file system of its own, size bytes
// large: a tmpfs mounted for the test (as root, or as the root of a user
// namespace) and unmounted at its end.
//
// Without root it runs the test again, alone, under "unshare -rm" (a user
// and mount namespace where the test is root and may mount a tmpfs), and
// reports that run's outcome: it then returns ok=false and the caller
// returns at once. When no small file system can be made, the test fails
// with CORDSTREAM_REQUIRE_KAFKA=1, and is skipped otherwise.
func smallFS(t *testing.T, size int64) (dir string, ok bool) {
	t.Helper()
	if os.Geteuid() != 0 {
		reexecInUserNS(t)
		return "", false
	}
	dir = t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		cannot(t, fmt.Sprintf("mount a %d-byte tmpfs on %s: %v", size, dir, err))
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount the test's tmpfs %s: %v", dir, err)
		}
	})
	return dir, true
}

// reexecInUserNS runs this test alone in a user and mount namespace.
func reexecInUserNS(t *testing.T) {
	t.Helper()
	if os.Getenv(envUserNS) == "1" {
		cannot(t, "not root even inside the user namespace")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		cannot(t, "not root, and unshare(1) is not installed (util-linux) to make a user namespace")
	}
	args := []string{"-rm", "--", os.Args[0], "-test.run=^" + t.Name() + "$", "-test.v", "-test.timeout=20m"}
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(os.Environ(), envUserNS+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("run as root of a user namespace (unshare -rm):\n%s", indent(string(out)))
	if err != nil {
		if strings.Contains(string(out), "unshare failed") || strings.Contains(string(out), "unshare:") {
			cannot(t, fmt.Sprintf("unshare -rm: %v", err))
		}
		t.Fatalf("the test failed inside the user namespace: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("the test did not pass inside the user namespace")
	}
}

// cannot skips the test, or fails it when integration tests must run.
func cannot(t *testing.T, why string) {
	t.Helper()
	msg := "cannot make a small file system for the spool: " + why +
		" (run the test as root, or where unshare -rm works)"
	if os.Getenv(kafkatest.EnvRequire) == "1" {
		t.Fatalf("%s [$%s=1: the fault test must run]", msg, kafkatest.EnvRequire)
	}
	t.Skip(msg)
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// freeBytes is what the file system holding dir has left.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatalf("statfs %s: %v", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// tmpFiles lists the temporary files left in dir.
func tmpFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
