package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testEnv is an env with captured output and the given environment.
func testEnv(vars map[string]string) (*env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}, &out, &errb
}

// kafkaConfigErr parses args and returns config()'s error.
func kafkaConfigErr(t *testing.T, vars map[string]string, args ...string) error {
	t.Helper()
	e, _, _ := testEnv(vars)
	fs := newFlagSet("x", e, "about", "example")
	kf := addKafkaFlags(fs, e)
	if err := parse(fs, e, args); err != nil {
		t.Fatalf("parse(%q) = %v", args, err)
	}
	_, err := kf.config()
	return err
}

func TestKafkaFlagsConfig(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	twoLines := filepath.Join(dir, "two")
	if err := os.WriteFile(twoLines, []byte("a\nb\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("defaults", func(t *testing.T) {
		e, _, _ := testEnv(nil)
		fs := newFlagSet("x", e, "about", "example")
		kf := addKafkaFlags(fs, e)
		if err := parse(fs, e, nil); err != nil {
			t.Fatal(err)
		}
		cfg, err := kf.config()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cfg.Brokers, []string{"localhost:9092"}) || cfg.ClientID != "cordstream" || cfg.UsesTLS() ||
			cfg.Mechanism() != "" || cfg.ConnectTimeout != 10*time.Second {
			t.Errorf("defaults = %v (timeout %s), want localhost:9092, client id cordstream, no TLS, no SASL, 10s", cfg, cfg.ConnectTimeout)
		}
	})

	t.Run("flags", func(t *testing.T) {
		e, _, _ := testEnv(map[string]string{"CORDSTREAM_SASL_PASSWORD": "from-env"})
		fs := newFlagSet("x", e, "about", "example")
		kf := addKafkaFlags(fs, e)
		args := []string{"--brokers", "a:1, b:2", "--client-id", "bot-7", "--tls", "--tls-server-name", "kafka.internal",
			"--sasl-mechanism", "scram-sha-512", "--sasl-user", "alice", "--connect-timeout", "30s"}
		if err := parse(fs, e, args); err != nil {
			t.Fatal(err)
		}
		cfg, err := kf.config()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cfg.Brokers, []string{"a:1", "b:2"}) || cfg.ClientID != "bot-7" || !cfg.TLS || cfg.ServerName != "kafka.internal" ||
			cfg.Mechanism() != "SCRAM-SHA-512" || cfg.SASLUser != "alice" || cfg.SASLPassword != "from-env" || cfg.ConnectTimeout != 30*time.Second {
			t.Errorf("config = %v %+v", cfg, cfg.ConnectTimeout)
		}
	})

	t.Run("environment fills flags", func(t *testing.T) {
		e, _, _ := testEnv(map[string]string{"CORDSTREAM_BROKERS": "k1:9092,k2:9092", "CORDSTREAM_SASL_MECHANISM": "PLAIN",
			"CORDSTREAM_SASL_USER": "bob", "CORDSTREAM_SASL_PASSWORD_FILE": pwFile, "CORDSTREAM_TRUSTED_NETWORK": "true"})
		fs := newFlagSet("x", e, "about", "example")
		kf := addKafkaFlags(fs, e)
		if err := parse(fs, e, nil); err != nil {
			t.Fatal(err)
		}
		cfg, err := kf.config()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cfg.Brokers, []string{"k1:9092", "k2:9092"}) || cfg.SASLUser != "bob" || cfg.SASLPassword != "from-file" {
			t.Errorf("config = %v, password from file %q", cfg, cfg.SASLPassword)
		}
	})

	errCases := []struct {
		name     string
		vars     map[string]string
		args     []string
		wantErr  string
		wantHint string
	}{
		{"password twice", map[string]string{"CORDSTREAM_SASL_PASSWORD": "x"},
			[]string{"--sasl-mechanism", "PLAIN", "--sasl-user", "u", "--sasl-password-file", pwFile}, "given twice", "unset"},
		{"password file missing", nil,
			[]string{"--sasl-mechanism", "PLAIN", "--sasl-user", "u", "--sasl-password-file", filepath.Join(dir, "nope")}, "nope", "--sasl-password-file"},
		{"password file empty", nil,
			[]string{"--sasl-mechanism", "PLAIN", "--sasl-user", "u", "--sasl-password-file", empty}, "is empty", "first line"},
		{"password file two lines", nil,
			[]string{"--sasl-mechanism", "PLAIN", "--sasl-user", "u", "--sasl-password-file", twoLines}, "more than one line", "one line"},
		{"no password", nil, []string{"--sasl-mechanism", "SCRAM-SHA-256", "--sasl-user", "u"}, "needs a password", "CORDSTREAM_SASL_PASSWORD"},
		{"bad broker", nil, []string{"--brokers", "localhost"}, "want host:port", "host:port"},
		{"no brokers", nil, []string{"--brokers", " , "}, "no Kafka brokers", "--brokers"},
		{"missing ca file", nil, []string{"--tls-ca-file", filepath.Join(dir, "ca.pem")}, "ca.pem", "--tls-ca-file"},
		{"zero timeout", nil, []string{"--connect-timeout", "0s"}, "must be positive", "10s"},
		{"unknown mechanism", map[string]string{"CORDSTREAM_SASL_PASSWORD": "x"},
			[]string{"--sasl-mechanism", "GSSAPI", "--sasl-user", "u"}, "unknown SASL mechanism", "SCRAM-SHA-512"},
		{"plain in clear text", map[string]string{"CORDSTREAM_SASL_PASSWORD": "x"},
			[]string{"--sasl-mechanism", "PLAIN", "--sasl-user", "u"}, "clear text", "--trusted-network"},
	}
	for _, tt := range errCases {
		t.Run(tt.name, func(t *testing.T) {
			err := kafkaConfigErr(t, tt.vars, tt.args...)
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("config() = %v (%T), want a usage error", err, err)
			}
			if !strings.Contains(ue.msg, tt.wantErr) || !strings.Contains(ue.hint, tt.wantHint) {
				t.Errorf("config() = %q, hint %q; want %q and a hint with %q", ue.msg, ue.hint, tt.wantErr, tt.wantHint)
			}
			for _, pw := range []string{"from-file", "from-env"} {
				if strings.Contains(ue.msg+ue.hint, pw) {
					t.Errorf("error reveals the password: %q", ue.msg)
				}
			}
		})
	}
}

// No flag takes the password: it must not be possible to put it in argv.
func TestNoPasswordFlag(t *testing.T) {
	e, _, _ := testEnv(nil)
	fs := newFlagSet("x", e, "about", "example")
	addKafkaFlags(fs, e)
	for _, name := range []string{"sasl-password", "password"} {
		if fs.Lookup(name) != nil {
			t.Errorf("flag --%s exists; the password must come from the environment or a file", name)
		}
	}
}

// TestSecretFilePermissions: a secret file others may read is warned
// about, as ssh does for a private key; one only its owner reads is not.
func TestSecretFilePermissions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		warn bool
	}{{0o600, false}, {0o400, false}, {0o640, true}, {0o644, true}, {0o604, true}} {
		pw := filepath.Join(dir, fmt.Sprintf("pw-%o", tc.mode))
		if err := os.WriteFile(pw, []byte("pw\n"), tc.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(pw, tc.mode); err != nil { // past the umask
			t.Fatal(err)
		}
		e, _, errb := testEnv(map[string]string{"CORDSTREAM_SASL_MECHANISM": "SCRAM-SHA-512", "CORDSTREAM_SASL_USER": "u",
			"CORDSTREAM_SASL_PASSWORD_FILE": pw})
		fs := newFlagSet("x", e, "about", "example")
		kf := addKafkaFlags(fs, e)
		if err := parse(fs, e, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := kf.config(); err != nil {
			t.Fatal(err)
		}
		got := strings.Contains(errb.String(), "readable by other users") && strings.Contains(errb.String(), "chmod 600")
		if got != tc.warn {
			t.Errorf("password file mode %04o: warned %v, want %v (%q)", tc.mode, got, tc.warn, errb.String())
		}
	}
}
