// Package kafka wires franz-go for every cordstream command: connection
// settings (brokers, client id, TLS, SASL), client construction with a fast,
// clear failure for unreachable brokers, and topic administration.
package kafka

import (
	"context"
	"errors"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

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
}

// Validate checks the settings before any connection is tried.
func (c *Config) Validate() error { return errors.New("TODO") }

// Options returns the franz-go options for these settings.
func (c *Config) Options() ([]kgo.Opt, error) { return nil, errors.New("TODO") }

// NewClient creates a client and checks, within seconds, that a broker
// answers; the error names the addresses and what to check.
func NewClient(ctx context.Context, cfg Config, log *slog.Logger, opts ...kgo.Opt) (*kgo.Client, error) {
	return nil, errors.New("TODO")
}
