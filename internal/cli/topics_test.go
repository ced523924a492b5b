package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
)

// runTopicsCLI runs "cordstream topics args..." and returns the exit code and
// the output.
func runTopicsCLI(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	e, out, errb := testEnv(vars)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code = run(ctx, append([]string{"topics"}, args...), e)
	return code, out.String(), errb.String()
}

func TestTopicsUsage(t *testing.T) {
	example := "cordstream topics create --topic discord_messages --partitions 1 --replication-factor 1"
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    string // substring of stdout
		wantErrOut string // substring of stderr
	}{
		{"help", []string{"--help"}, exitOK, example, ""},
		{"create help", []string{"create", "--help"}, exitOK, example, ""},
		{"describe help", []string{"describe", "-h"}, exitOK, "cordstream topics describe --topic discord_messages", ""},
		{"no action", nil, exitUsage, "", "missing action"},
		{"unknown action", []string{"alter"}, exitUsage, "", `unknown action "alter"`},
		{"no topic", []string{"create"}, exitUsage, "", "--topic is required"},
		{"bad topic name", []string{"describe", "--topic", "a b"}, exitUsage, "", `contains ' '`},
		{"zero partitions", []string{"create", "--topic", "t", "--partitions", "0"}, exitUsage, "", "invalid --partitions 0"},
		{"bad replication factor", []string{"create", "--topic", "t", "--replication-factor", "-2"}, exitUsage, "", "invalid --replication-factor -2"},
		{"bad config", []string{"create", "--topic", "t", "--config", "retention.ms"}, exitUsage, "", "want key=value"},
		{"config twice", []string{"create", "--topic", "t", "--config", "a=1", "--config", "a=2"}, exitUsage, "", `"a" given twice`},
		{"extra argument", []string{"list", "extra"}, exitUsage, "", `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runTopicsCLI(t, nil, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out, errOut)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout = %q, want it to contain %q", out, tt.wantOut)
			}
			if !strings.Contains(errOut, tt.wantErrOut) {
				t.Errorf("stderr = %q, want it to contain %q", errOut, tt.wantErrOut)
			}
		})
	}
}

func TestTopicsUnreachableBroker(t *testing.T) {
	start := time.Now()
	code, _, errOut := runTopicsCLI(t, nil, "list", "--brokers", "127.0.0.1:1", "--connect-timeout", "2s")
	if code != exitFailure {
		t.Errorf("exit code = %d, want %d", code, exitFailure)
	}
	if !strings.Contains(errOut, "127.0.0.1:1") || !strings.Contains(errOut, "hint: check that the broker is running") {
		t.Errorf("stderr = %q, want the address and a hint", errOut)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("took %s, want about the 2s connect timeout", elapsed)
	}
}

// The topics command against the real broker, the way a person runs it.
func TestTopicsAgainstBroker(t *testing.T) {
	vars := map[string]string{"CORDSTREAM_BROKERS": strings.Join(kafkatest.Brokers(t), ",")}
	topic := kafkatest.TopicName(t)
	t.Cleanup(func() { runTopicsCLI(t, vars, "delete", "--topic", topic, "--if-exists") })

	code, out, errOut := runTopicsCLI(t, vars, "create", "--topic", topic, "--partitions", "2", "--replication-factor", "1",
		"--config", "retention.ms=86400000")
	if code != exitOK || !strings.Contains(out, `created topic "`+topic+`" (2 partitions, replication factor 1)`) {
		t.Fatalf("create: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	code, out, errOut = runTopicsCLI(t, vars, "create", "--topic", topic, "--partitions", "1", "--replication-factor", "1")
	if code != exitOK || !strings.Contains(out, "already exists (2 partitions, replication factor 1); left unchanged") ||
		!strings.Contains(errOut, "you asked for 1 partition") {
		t.Errorf("second create: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	code, out, errOut = runTopicsCLI(t, vars, "describe", "--topic", topic)
	for _, want := range []string{"Topic: " + topic, "PartitionCount: 2", "ReplicationFactor: 1",
		"Partition: 0", "Partition: 1", "Leader: 1", "Replicas: 1", "Isr: 1", "retention.ms=86400000"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe output lacks %q:\n%s%s", want, out, errOut)
		}
	}
	if code != exitOK || strings.Contains(out, "segment.bytes") {
		t.Errorf("describe: exit %d, want 0 and only the configs set on the topic:\n%s", code, out)
	}
	if _, out, _ = runTopicsCLI(t, vars, "describe", "--topic", topic, "--all-configs"); !strings.Contains(out, "segment.bytes=") {
		t.Errorf("describe --all-configs lacks the defaults:\n%s", out)
	}
	if _, out, _ = runTopicsCLI(t, vars, "list"); !strings.Contains(out, topic+"\n") {
		t.Errorf("list lacks %s:\n%s", topic, out)
	}

	if code, out, errOut = runTopicsCLI(t, vars, "delete", "--topic", topic); code != exitOK || !strings.Contains(out, "deleted topic") {
		t.Fatalf("delete: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	// Deletion completes asynchronously: describe until the topic is gone.
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, _, errOut = runTopicsCLI(t, vars, "describe", "--topic", topic)
		if code != exitOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != exitFailure || !strings.Contains(errOut, "does not exist") ||
		!strings.Contains(errOut, "hint: create it: cordstream topics create --topic "+topic) {
		t.Errorf("describe after delete: exit %d, stderr: %s", code, errOut)
	}
	if code, _, errOut = runTopicsCLI(t, vars, "delete", "--topic", topic); code != exitFailure || !strings.Contains(errOut, "--if-exists") {
		t.Errorf("delete of a missing topic: exit %d, stderr: %s", code, errOut)
	}
	if code, out, _ = runTopicsCLI(t, vars, "delete", "--topic", topic, "--if-exists"); code != exitOK || !strings.Contains(out, "nothing to delete") {
		t.Errorf("delete --if-exists of a missing topic: exit %d, stdout: %s", code, out)
	}
}

// The SASL password reaches the broker from $CORDSTREAM_SASL_PASSWORD; a
// wrong one fails at once with exit 1 and a hint, never printing it.
func TestTopicsOverSASL(t *testing.T) {
	sec := kafkatest.SecureListener(t)
	vars := map[string]string{
		"CORDSTREAM_BROKERS":        strings.Join(sec.Brokers, ","),
		"CORDSTREAM_TLS_CA_FILE":    sec.CAFile,
		"CORDSTREAM_SASL_MECHANISM": "SCRAM-SHA-256",
		"CORDSTREAM_SASL_USER":      sec.User,
		"CORDSTREAM_SASL_PASSWORD":  sec.Password,
	}
	if code, out, errOut := runTopicsCLI(t, vars, "list"); code != exitOK {
		t.Fatalf("list over SASL_SSL: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	vars["CORDSTREAM_SASL_PASSWORD"] = "wrong-password-77"
	start := time.Now()
	code, _, errOut := runTopicsCLI(t, vars, "list")
	if code != exitFailure || !strings.Contains(errOut, "SASL authentication failed") || !strings.Contains(errOut, "hint:") {
		t.Errorf("wrong password: exit %d, stderr: %s", code, errOut)
	}
	if strings.Contains(errOut, "wrong-password-77") {
		t.Errorf("stderr reveals the password: %s", errOut)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("wrong password took %s to fail, want within seconds", elapsed)
	}
}
