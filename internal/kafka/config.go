// Package kafka wires franz-go for every cordstream command: connection
// settings (brokers, client id, TLS, SASL), client construction with a fast,
// clear failure for unreachable brokers, and topic administration.
//
// Errors meant for a person implement Hint() string, which says what to check
// or run next; the command line prints it on a "hint:" line.
package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The SASL mechanisms Config accepts (case-insensitively).
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// DefaultConnectTimeout is how long NewClient waits for a broker to answer
// when Config.ConnectTimeout is zero.
const DefaultConnectTimeout = 10 * time.Second

// Config is how every command connects to Kafka.
type Config struct {
	Brokers  []string // bootstrap brokers, host:port
	ClientID string

	TLS        bool   // use TLS (implied by any of the files below)
	CAFile     string // PEM CA bundle; system roots when empty
	CertFile   string // client certificate (mutual TLS)
	KeyFile    string
	ServerName string // override the TLS server name

	SASLMechanism string // "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"
	SASLUser      string
	SASLPassword  string // never from a flag: environment or file; never logged
	// TrustedNetwork says the network between the client and the brokers
	// is trusted: only then may SASL PLAIN, which sends the password as
	// it is, run without TLS.
	TrustedNetwork bool

	// ConnectTimeout bounds how long NewClient waits for a broker to answer;
	// zero means DefaultConnectTimeout.
	ConnectTimeout time.Duration
}

// ConfigError is a connection setting that cannot work. Hint names the
// setting to fix.
type ConfigError struct {
	Msg  string
	hint string
	Err  error
}

func (e *ConfigError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

// Unwrap returns the underlying error, if any (an *os.PathError for a file
// that cannot be read).
func (e *ConfigError) Unwrap() error { return e.Err }

// Hint says which setting to fix.
func (e *ConfigError) Hint() string { return e.hint }

func configErr(hint string, err error, format string, args ...any) *ConfigError {
	return &ConfigError{Msg: fmt.Sprintf(format, args...), hint: hint, Err: err}
}

// UsesTLS reports whether connections use TLS: TLS is set, or any TLS file or
// the server name is.
func (c *Config) UsesTLS() bool {
	return c.TLS || c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.ServerName != ""
}

// Mechanism returns the SASL mechanism in its canonical spelling ("" for none,
// the input unchanged if it is not one Config knows).
func (c *Config) Mechanism() string {
	m := strings.ToUpper(strings.TrimSpace(c.SASLMechanism))
	switch m {
	case MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512, "":
		return m
	}
	return c.SASLMechanism
}

// Validate checks the settings before any connection is tried: at least one
// broker, every broker a host:port, a client certificate only with its key,
// a known SASL mechanism only together with a user and a password, and SASL
// PLAIN only over TLS unless the network is trusted. It reads no file;
// Options does. Every error is a *ConfigError.
func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return configErr("name at least one broker: --brokers localhost:9092", nil, "no Kafka brokers given")
	}
	for _, b := range c.Brokers {
		if err := checkAddr(b); err != nil {
			return configErr("--brokers takes comma-separated host:port pairs, e.g. localhost:9092,kafka-2:9092",
				nil, "broker address %q: %s", b, err)
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return configErr("a client certificate needs its key: give both --tls-cert-file and --tls-key-file",
			nil, "TLS client certificate and key must be given together")
	}
	switch c.Mechanism() {
	case "":
		if c.SASLUser != "" || c.SASLPassword != "" {
			return configErr("add --sasl-mechanism SCRAM-SHA-512 (or SCRAM-SHA-256, PLAIN), or drop the SASL user and password",
				nil, "a SASL user or password is set but no SASL mechanism")
		}
	case MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		if c.SASLUser == "" {
			return configErr("give the user with --sasl-user", nil, "SASL %s needs a user", c.Mechanism())
		}
		if c.SASLPassword == "" {
			return configErr("put the password in $CORDSTREAM_SASL_PASSWORD or in a file named by --sasl-password-file",
				nil, "SASL %s needs a password", c.Mechanism())
		}
		if c.Mechanism() == MechanismPlain && !c.UsesTLS() && !c.TrustedNetwork {
			return configErr("connect with TLS (--tls, and --tls-ca-file for a private CA), or use SCRAM-SHA-512 or SCRAM-SHA-256, "+
				"which never send the password; only on a network you trust, add --trusted-network",
				nil, "SASL PLAIN without TLS would send the password in clear text to the brokers and anyone on the way")
		}
	default:
		return configErr("use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", nil, "unknown SASL mechanism %q", c.SASLMechanism)
	}
	if c.ConnectTimeout < 0 {
		return configErr("use a positive duration such as 10s", nil, "negative connect timeout %s", c.ConnectTimeout)
	}
	return nil
}

func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(strings.TrimSpace(addr))
	if err != nil {
		return errors.New("want host:port")
	}
	if host == "" {
		return errors.New("missing host")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

// Options returns the franz-go options for these settings: seed brokers,
// client id, TLS (CA, client certificate, server name; TLS 1.2 or newer) and
// SASL. It validates first and reads the TLS files; a file that is missing or
// holds no usable PEM data is a *ConfigError naming it.
func (c *Config) Options() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	brokers := make([]string, len(c.Brokers))
	for i, b := range c.Brokers {
		brokers[i] = strings.TrimSpace(b)
	}
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	if c.ClientID != "" {
		opts = append(opts, kgo.ClientID(c.ClientID))
	}
	if c.UsesTLS() {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := c.saslMechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func (c *Config) tlsConfig() (*tls.Config, error) {
	// ServerName stays empty unless overridden: franz-go then uses the host
	// of each broker it dials.
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, configErr("check --tls-ca-file", err, "read TLS CA file")
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, configErr("--tls-ca-file must hold PEM certificates (-----BEGIN CERTIFICATE-----)",
				nil, "TLS CA file %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, configErr("--tls-cert-file and --tls-key-file must be a PEM certificate and its matching PEM private key",
				err, "load TLS client certificate %s and key %s", c.CertFile, c.KeyFile)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (c *Config) saslMechanism() sasl.Mechanism {
	switch c.Mechanism() {
	case MechanismPlain:
		return plain.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsMechanism()
	case MechanismSCRAMSHA256:
		return scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha256Mechanism()
	case MechanismSCRAMSHA512:
		return scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha512Mechanism()
	}
	return nil
}

// String describes the settings for logs: brokers, client id, TLS and the
// SASL mechanism and user. It never includes the password.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "brokers=%s", strings.Join(c.Brokers, ","))
	if c.ClientID != "" {
		fmt.Fprintf(&b, " client_id=%s", c.ClientID)
	}
	if c.UsesTLS() {
		b.WriteString(" tls=on")
	}
	if m := c.Mechanism(); m != "" {
		fmt.Fprintf(&b, " sasl=%s user=%s", m, c.SASLUser)
	}
	if c.TrustedNetwork {
		b.WriteString(" trusted_network=true")
	}
	return b.String()
}

// GoString keeps the password out of %#v as well.
func (c Config) GoString() string { return "kafka.Config{" + c.String() + "}" }
