// Package kafkatest connects tests to the real Apache Kafka broker that
// scripts/kafka runs (scripts/test starts it and exports its addresses).
//
// The broker is found through environment variables:
//
//	CORDSTREAM_TEST_BROKERS        PLAINTEXT bootstrap address(es), comma-separated
//	CORDSTREAM_TEST_SASL_BROKERS   SASL_SSL bootstrap address (scripts/kafka start --secure)
//	CORDSTREAM_TEST_TLS_CA_FILE    the CA of the SASL_SSL listener's certificate
//	CORDSTREAM_TEST_TLS_CERT_FILE  a client certificate signed by that CA
//	CORDSTREAM_TEST_TLS_KEY_FILE   its key
//	CORDSTREAM_TEST_SASL_USER      a user for SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN
//	CORDSTREAM_TEST_SASL_PASSWORD  its password
//
// When they are missing, a test that needs the broker is skipped with a
// message saying to run scripts/test, or fails if CORDSTREAM_REQUIRE_KAFKA=1
// (set by scripts/test and CI, so that no integration test passes unnoticed
// as skipped).
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/kafka"
)

// The environment variables this package reads.
const (
	EnvBrokers      = "CORDSTREAM_TEST_BROKERS"
	EnvRequire      = "CORDSTREAM_REQUIRE_KAFKA"
	EnvSASLBrokers  = "CORDSTREAM_TEST_SASL_BROKERS"
	EnvTLSCAFile    = "CORDSTREAM_TEST_TLS_CA_FILE"
	EnvTLSCertFile  = "CORDSTREAM_TEST_TLS_CERT_FILE"
	EnvTLSKeyFile   = "CORDSTREAM_TEST_TLS_KEY_FILE"
	EnvSASLUser     = "CORDSTREAM_TEST_SASL_USER"
	EnvSASLPassword = "CORDSTREAM_TEST_SASL_PASSWORD"
)

// missing skips or fails t because the named variables are not set.
func missing(t testing.TB, what string, vars ...string) {
	t.Helper()
	msg := fmt.Sprintf("no %s: $%s not set; run scripts/test (it starts a real Kafka broker with scripts/kafka and sets them)",
		what, strings.Join(vars, ", $"))
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s [$%s=1: integration tests must run]", msg, EnvRequire)
	}
	t.Skip(msg)
}

// Brokers returns the PLAINTEXT bootstrap addresses of the test broker.
func Brokers(t testing.TB) []string {
	t.Helper()
	bs := split(os.Getenv(EnvBrokers))
	if len(bs) == 0 {
		missing(t, "test Kafka broker", EnvBrokers)
	}
	return bs
}

// Config returns connection settings for the PLAINTEXT listener, with a
// client id naming the test.
func Config(t testing.TB) kafka.Config {
	t.Helper()
	return kafka.Config{Brokers: Brokers(t), ClientID: "cordstream-test", ConnectTimeout: 15 * time.Second}
}

// Secure is the test broker's SASL_SSL listener.
type Secure struct {
	Brokers  []string
	CAFile   string
	CertFile string // client certificate (the listener requests, not requires, one)
	KeyFile  string
	User     string // exists for SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN
	Password string
}

// SecureListener returns the SASL_SSL listener's settings.
func SecureListener(t testing.TB) Secure {
	t.Helper()
	s := Secure{
		Brokers:  split(os.Getenv(EnvSASLBrokers)),
		CAFile:   os.Getenv(EnvTLSCAFile),
		CertFile: os.Getenv(EnvTLSCertFile),
		KeyFile:  os.Getenv(EnvTLSKeyFile),
		User:     os.Getenv(EnvSASLUser),
		Password: os.Getenv(EnvSASLPassword),
	}
	if len(s.Brokers) == 0 || s.CAFile == "" || s.User == "" || s.Password == "" {
		missing(t, "SASL_SSL test listener", EnvSASLBrokers, EnvTLSCAFile, EnvSASLUser, EnvSASLPassword)
	}
	return s
}

// Config returns settings for the listener with the given SASL mechanism
// (kafka.MechanismSCRAMSHA256, ...), TLS verified against the test CA.
func (s Secure) Config(mechanism string) kafka.Config {
	return kafka.Config{
		Brokers:        s.Brokers,
		ClientID:       "cordstream-test",
		TLS:            true,
		CAFile:         s.CAFile,
		SASLMechanism:  mechanism,
		SASLUser:       s.User,
		SASLPassword:   s.Password,
		ConnectTimeout: 15 * time.Second,
	}
}

// Client returns a client for the PLAINTEXT listener, closed when the test
// ends. opts are added after the connection settings.
func Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cfg := Config(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kafka.NewClient(ctx, cfg, nil, opts...)
	if err != nil {
		t.Fatalf("connect to the test broker at %s: %v", strings.Join(cfg.Brokers, ","), err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Topic creates a topic with a name unique to this test run and the given
// number of partitions (replication factor 1), and deletes it when the test
// ends.
func Topic(t testing.TB, partitions int32) string {
	t.Helper()
	name := TopicName(t)
	cl := Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kafka.EnsureTopic(ctx, cl, kafka.TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: 1}); err != nil {
		t.Fatalf("create test topic %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := kafka.DeleteTopic(ctx, cl, name); err != nil && !isNotFound(err) {
			t.Logf("delete test topic %s: %v", name, err)
		}
	})
	return name
}

// TopicName returns a topic name unique to this test run, derived from the
// test's name; nothing is created.
func TopicName(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("test-")
	for _, r := range strings.ToLower(t.Name()) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
		if b.Len() >= 150 {
			break
		}
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("random topic suffix: %v", err)
	}
	return b.String() + "-" + hex.EncodeToString(rnd[:])
}

func isNotFound(err error) bool {
	var nf *kafka.TopicNotFoundError
	return errors.As(err, &nf)
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
