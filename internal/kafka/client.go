package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// How NewClient paces its attempts.
const (
	attemptTimeout = 3 * time.Second        // one metadata round trip
	progressEvery  = 2 * time.Second        // "still trying" log lines
	maxBackoff     = time.Second            // between attempts
	minBackoff     = 200 * time.Millisecond // first retry
)

// NewClient creates a client and checks, within seconds, that a broker
// answers; the error names the addresses and what to check.
//
// It validates cfg, builds the client from cfg.Options() followed by opts
// (so opts override), and sends metadata requests to the seed brokers until
// one answers or cfg.ConnectTimeout (default 10s) passes, logging "still
// trying to reach Kafka" every 2s meanwhile. It then checks that at least one
// broker is reachable at the address the cluster advertises. Failures:
//   - *AuthError at once when the broker rejects the SASL credentials;
//   - *TLSError at once when the TLS handshake fails (unknown CA, name mismatch,
//     a plaintext listener);
//   - *ConnectError when no broker answered in time (it names the addresses);
//   - the context's error, wrapped, when ctx ends first.
//
// franz-go's own warnings are logged through log once the broker answered.
// log may be nil.
func NewClient(ctx context.Context, cfg Config, log *slog.Logger, opts ...kgo.Opt) (*kgo.Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "kafka")
	base, err := cfg.Options()
	if err != nil {
		return nil, err
	}
	kl := NewLogger(log, nil)
	kl.SetQuiet(true) // NewClient reports connection trouble itself
	all := append([]kgo.Opt{kgo.WithLogger(kl)}, base...)
	all = append(all, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, configErr("check the Kafka connection settings", err, "create Kafka client")
	}
	if err := waitForBroker(ctx, cl, &cfg, log); err != nil {
		cl.Close()
		return nil, err
	}
	kl.SetQuiet(false)
	log.Debug("connected to Kafka", "config", cfg)
	return cl, nil
}

func waitForBroker(ctx context.Context, cl *kgo.Client, cfg *Config, log *slog.Logger) error {
	timeout := cfg.ConnectTimeout
	if timeout == 0 {
		timeout = DefaultConnectTimeout
	}
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	lastLog := start
	backoff := minBackoff
	var lastErr error
	for {
		actx, acancel := context.WithTimeout(dctx, attemptTimeout)
		err := cl.Ping(actx)
		acancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("connect to Kafka at %s: %w", strings.Join(cfg.Brokers, ","), ctx.Err())
		}
		if ferr := fatalErr(err, cfg); ferr != nil {
			return ferr
		}
		if errors.Is(err, context.DeadlineExceeded) {
			// The attempt timed out: the address takes connections silently
			// (a firewall, a wrong host) or the broker is overloaded.
			err = fmt.Errorf("no answer within %s", attemptTimeout)
		}
		if lastErr == nil || !isNoAnswer(err) || isNoAnswer(lastErr) {
			lastErr = err
		}
		if dctx.Err() != nil {
			return &ConnectError{Brokers: cfg.Brokers, Waited: time.Since(start).Round(time.Millisecond), Err: lastErr, tls: cfg.UsesTLS(), mechanism: cfg.Mechanism()}
		}
		if time.Since(lastLog) >= progressEvery {
			lastLog = time.Now()
			log.Warn("still trying to reach Kafka", "brokers", strings.Join(cfg.Brokers, ","),
				"waited", time.Since(start).Round(100*time.Millisecond), "timeout", timeout, "err", lastErr)
		}
		select {
		case <-dctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
	return checkAdvertised(ctx, cl, cfg, start)
}

// checkAdvertised asks each broker the seeds reported for its API versions at
// the address it advertises: clients are sent there for everything after the
// first request, so an advertised address that is unreachable from here (the
// classic container set-up mistake) must fail now, not on the first produce.
func checkAdvertised(ctx context.Context, cl *kgo.Client, cfg *Config, start time.Time) error {
	brokers := cl.DiscoveredBrokers()
	if len(brokers) == 0 {
		return nil
	}
	var lastErr error
	for _, b := range brokers {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		_, err := b.Request(actx, kmsg.NewPtrApiVersionsRequest())
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("connect to Kafka at %s: %w", strings.Join(cfg.Brokers, ","), ctx.Err())
		}
		if ferr := fatalErr(err, cfg); ferr != nil {
			return ferr
		}
		lastErr = err
	}
	return &ConnectError{
		Brokers:               cfg.Brokers,
		Waited:                time.Since(start).Round(time.Millisecond),
		Err:                   lastErr,
		AdvertisedUnreachable: true,
		Advertised:            advertisedAddrs(ctx, cl),
		tls:                   cfg.UsesTLS(),
		mechanism:             cfg.Mechanism(),
	}
}

// advertisedAddrs asks a seed broker which addresses the cluster advertises.
func advertisedAddrs(ctx context.Context, cl *kgo.Client) []string {
	for _, seed := range cl.SeedBrokers() {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		resp, err := seed.Request(actx, kmsg.NewPtrMetadataRequest())
		cancel()
		if err != nil {
			continue
		}
		var out []string
		for _, b := range resp.(*kmsg.MetadataResponse).Brokers {
			out = append(out, net.JoinHostPort(b.Host, fmt.Sprint(b.Port)))
		}
		return out
	}
	return nil
}

// isNoAnswer reports whether err says nothing more than that time ran out; a
// more specific earlier error (connection refused) is kept in its place.
func isNoAnswer(err error) bool {
	return strings.HasPrefix(err.Error(), "no answer within")
}

// fatalErr returns the error to stop retrying with, or nil if err may pass
// (the broker may still be starting).
func fatalErr(err error, cfg *Config) error {
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.UnsupportedSaslMechanism),
		errors.Is(err, kerr.IllegalSaslState):
		return &AuthError{Mechanism: cfg.Mechanism(), User: cfg.SASLUser, Brokers: cfg.Brokers, Err: err}
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		recordHdr tls.RecordHeaderError
		alert     tls.AlertError
	)
	switch {
	case errors.As(err, &recordHdr):
		return &TLSError{Brokers: cfg.Brokers, Err: err, peer: peerPlaintext}
	case errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &alert) || strings.Contains(err.Error(), "remote error: tls:"):
		return &TLSError{Brokers: cfg.Brokers, Err: err}
	case !cfg.UsesTLS() && strings.Contains(err.Error(), "plaintext connection speaking to a tls endpoint"):
		// franz-go recognises a TLS alert where a Kafka response should be.
		return &TLSError{Brokers: cfg.Brokers, Err: err, peer: peerTLS}
	}
	return nil
}

// ConnectError is returned by NewClient when no broker answered in time.
type ConnectError struct {
	Brokers []string      // the bootstrap addresses tried
	Waited  time.Duration // how long NewClient tried
	Err     error         // the last failure

	// AdvertisedUnreachable is set when a bootstrap broker answered but no
	// broker answered at the address the cluster advertises; Advertised
	// lists those addresses when they could be read.
	AdvertisedUnreachable bool
	Advertised            []string

	tls       bool   // whether TLS was used, for the hint
	mechanism string // the SASL mechanism used, for the hint
}

func (e *ConnectError) Error() string {
	if e.AdvertisedUnreachable {
		adv := strings.Join(e.Advertised, ",")
		if adv == "" {
			adv = "unknown"
		}
		return fmt.Sprintf("Kafka at %s answered, but no broker answered at the addresses the cluster advertises (%s) within %s: %v",
			strings.Join(e.Brokers, ","), adv, e.Waited, e.Err)
	}
	return fmt.Sprintf("no Kafka broker answered at %s within %s: %v", strings.Join(e.Brokers, ","), e.Waited, e.Err)
}

// Unwrap returns the last connection failure.
func (e *ConnectError) Unwrap() error { return e.Err }

// Hint says what to check.
func (e *ConnectError) Hint() string {
	if e.AdvertisedUnreachable {
		return "the broker's advertised.listeners must name an address this machine can reach " +
			"(in containers: one listener for the host, one for the container network); --brokers only picks the first contact"
	}
	var hints []string
	if errors.Is(e.Err, io.EOF) || errors.Is(e.Err, io.ErrUnexpectedEOF) || errors.Is(e.Err, syscall.ECONNRESET) {
		switch {
		case !e.tls:
			hints = append(hints, "a broker accepted the connection and closed it: that listener may need TLS (--tls) or SASL (--sasl-mechanism)")
		case e.mechanism == "":
			hints = append(hints, "a broker accepted the TLS connection and closed it: that listener may need SASL (--sasl-mechanism, --sasl-user)")
		default:
			hints = append(hints, "a broker accepted the connection and closed it: check that the listener's security protocol matches --tls and --sasl-mechanism")
		}
	}
	hints = append(hints,
		"check that the broker is running (for development: scripts/kafka start; scripts/kafka status)",
		"that --brokers names its host:port (now "+strings.Join(e.Brokers, ",")+")",
		"that its listeners/advertised.listeners are reachable from here",
		"and that --tls/--sasl-* match the listener's security protocol")
	return strings.Join(hints, "; ")
}

// AuthError is a broker rejecting the SASL credentials (or the mechanism).
// It names the mechanism and user, never the password.
type AuthError struct {
	Mechanism string
	User      string
	Brokers   []string
	Err       error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("SASL authentication failed at %s (mechanism %s, user %q): %v",
		strings.Join(e.Brokers, ","), e.Mechanism, e.User, e.Err)
}

// Unwrap returns the broker's error (kerr.SaslAuthenticationFailed and the like).
func (e *AuthError) Unwrap() error { return e.Err }

// Hint says what to check.
func (e *AuthError) Hint() string {
	if errors.Is(e.Err, kerr.UnsupportedSaslMechanism) {
		return "the listener does not enable " + e.Mechanism + "; pick one it lists with --sasl-mechanism"
	}
	return "check --sasl-user, the password in $CORDSTREAM_SASL_PASSWORD or --sasl-password-file, " +
		"and --sasl-mechanism (SCRAM users exist per mechanism)"
}

// TLSError is a TLS mismatch with a broker: a failed handshake, or TLS on
// one side of the connection only.
type TLSError struct {
	Brokers []string
	Err     error
	peer    tlsPeer
}

// tlsPeer says what the broker's listener turned out to speak.
type tlsPeer int

const (
	peerFailedHandshake tlsPeer = iota // TLS on both sides; the handshake failed
	peerPlaintext                      // we speak TLS, the listener does not
	peerTLS                            // we speak plaintext, the listener wants TLS
)

func (e *TLSError) Error() string {
	if e.peer == peerTLS {
		return fmt.Sprintf("Kafka at %s speaks TLS, but the client is not configured for TLS: %v", strings.Join(e.Brokers, ","), e.Err)
	}
	return fmt.Sprintf("TLS handshake with Kafka at %s failed: %v", strings.Join(e.Brokers, ","), e.Err)
}

// Unwrap returns the handshake error.
func (e *TLSError) Unwrap() error { return e.Err }

// Hint says what to check.
func (e *TLSError) Hint() string {
	switch e.peer {
	case peerPlaintext:
		return "the listener at that address does not speak TLS: drop --tls and the --tls-* flags, or use the broker's TLS port"
	case peerTLS:
		return "add --tls (with --tls-ca-file if a private CA signed the broker's certificate), and the --sasl-* flags if the listener is SASL_SSL"
	}
	return "check --tls-ca-file (the CA that signed the broker's certificate), --tls-server-name (a name in the certificate), " +
		"and, if the broker requires client certificates, --tls-cert-file and --tls-key-file"
}
