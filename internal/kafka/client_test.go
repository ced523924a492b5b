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
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cordstream/cordstream/internal/testio"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// serve accepts connections on a loopback listener and hands each to handle
// until the test ends.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func TestNewClientUnreachable(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	var logs testio.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := Config{Brokers: []string{addr}, ConnectTimeout: 3 * time.Second}

	start := time.Now()
	cl, err := NewClient(context.Background(), cfg, log)
	elapsed := time.Since(start)
	if err == nil {
		cl.Close()
		t.Fatal("NewClient to a closed port succeeded")
	}
	if elapsed < 2*time.Second || elapsed > 5*time.Second {
		t.Errorf("NewClient took %s, want about the 3s connect timeout", elapsed)
	}
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("error is %T (%v), want *ConnectError", err, err)
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error = %q, want the address %s and the reason", err, addr)
	}
	for _, want := range []string{"running", "--brokers", "advertised.listeners", "scripts/kafka start"} {
		if !strings.Contains(ce.Hint(), want) {
			t.Errorf("Hint() = %q, want it to mention %q", ce.Hint(), want)
		}
	}
	if got := strings.Count(logs.String(), "still trying to reach Kafka"); got < 1 {
		t.Errorf("log has %d progress lines, want >= 1; log:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "component=kafka") {
		t.Errorf("log lines are not scoped with component=kafka:\n%s", logs.String())
	}
}

// Without a ConnectTimeout the default (10s) applies: the error comes within
// seconds, not after franz-go's own long retries.
func TestNewClientUnreachableDefaultTimeout(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("takes the 10s default connect timeout")
	}
	start := time.Now()
	_, err := NewClient(context.Background(), Config{Brokers: []string{closedPort(t)}}, nil)
	elapsed := time.Since(start)
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("error is %T (%v), want *ConnectError", err, err)
	}
	if elapsed < DefaultConnectTimeout-time.Second || elapsed > DefaultConnectTimeout+3*time.Second {
		t.Errorf("NewClient took %s, want about %s", elapsed, DefaultConnectTimeout)
	}
}

func TestNewClientContextCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := NewClient(ctx, Config{Brokers: []string{closedPort(t)}, ConnectTimeout: time.Minute}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want the context's deadline", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("NewClient returned %s after its context ended, want at once", elapsed)
	}
}

func TestNewClientInvalidConfig(t *testing.T) {
	_, err := NewClient(context.Background(), Config{}, nil)
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v (%T), want *ConfigError", err, err)
	}
}

// A listener that accepts and closes at once is what a TLS or SASL listener
// looks like to a plaintext client: the hint must say so.
func TestNewClientClosedByPeerHintsAtSecurity(t *testing.T) {
	t.Parallel()
	addr := serve(t, func(net.Conn) {})
	_, err := NewClient(context.Background(), Config{Brokers: []string{addr}, ConnectTimeout: 2 * time.Second}, nil)
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v (%T), want *ConnectError", err, err)
	}
	if !strings.Contains(ce.Hint(), "may need TLS (--tls)") {
		t.Errorf("Hint() = %q, want it to suggest TLS/SASL", ce.Hint())
	}
}

func TestNewClientTLSFailuresAreFast(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	tlsServer := func(cert tls.Certificate) string {
		return serve(t, func(c net.Conn) {
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
			_ = tc.Handshake()
			_, _ = io.Copy(io.Discard, tc)
		})
	}
	tests := []struct {
		name     string
		addr     string
		cfg      Config
		wantErr  string
		wantHint string
	}{
		{
			name:     "certificate from an unknown CA",
			addr:     tlsServer(pki.serverCertUntrusted),
			cfg:      Config{CAFile: pki.caFile, ServerName: "localhost"},
			wantErr:  "certificate signed by unknown authority",
			wantHint: "--tls-ca-file",
		},
		{
			name:     "name not in the certificate",
			addr:     tlsServer(pki.serverCert),
			cfg:      Config{CAFile: pki.caFile, ServerName: "kafka.example"},
			wantErr:  "kafka.example",
			wantHint: "--tls-server-name",
		},
		{
			name:     "plaintext listener",
			addr:     serve(t, func(c net.Conn) { _, _ = c.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\n")) }),
			cfg:      Config{TLS: true},
			wantErr:  "TLS handshake",
			wantHint: "does not speak TLS",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Brokers = []string{tt.addr}
			start := time.Now()
			_, err := NewClient(context.Background(), cfg, nil)
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("NewClient took %s, want a TLS failure at once", elapsed)
			}
			var te *TLSError
			if !errors.As(err, &te) {
				t.Fatalf("error = %v (%T), want *TLSError", err, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.addr) {
				t.Errorf("error = %q, want it to contain %q and %s", err, tt.wantErr, tt.addr)
			}
			if !strings.Contains(te.Hint(), tt.wantHint) {
				t.Errorf("Hint() = %q, want it to contain %q", te.Hint(), tt.wantHint)
			}
		})
	}
}

// A broker whose metadata advertises an address this machine cannot reach
// (the classic container mistake) must fail in NewClient, not on first use.
func TestNewClientAdvertisedUnreachable(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bad := closedPort(t)
	host, port, _ := net.SplitHostPort(bad)
	var p int32
	fmt.Sscan(port, &p)
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		resp.Version = req.GetVersion()
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = 7, host, p
		resp.Brokers = []kmsg.MetadataResponseBroker{b}
		resp.ControllerID = 7
		return resp, nil, true
	})

	_, err = NewClient(context.Background(), Config{Brokers: c.ListenAddrs(), ConnectTimeout: 5 * time.Second}, nil)
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v (%T), want *ConnectError", err, err)
	}
	if !ce.AdvertisedUnreachable || !strings.Contains(err.Error(), bad) {
		t.Errorf("error = %q, want it to name the advertised address %s", err, bad)
	}
	if !strings.Contains(ce.Hint(), "advertised.listeners") {
		t.Errorf("Hint() = %q, want it to point at advertised.listeners", ce.Hint())
	}
}

func TestNewClientAgainstKfake(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := NewClient(context.Background(), Config{Brokers: c.ListenAddrs(), ClientID: "t"}, nil)
	if err != nil {
		t.Fatalf("NewClient = %v", err)
	}
	cl.Close()
}

func TestFatalErr(t *testing.T) {
	cfg := &Config{Brokers: []string{"b:9094"}, SASLMechanism: "scram-sha-512", SASLUser: "alice", SASLPassword: secret}
	tests := []struct {
		name     string
		err      error
		want     string // "auth", "tls" or "" (retry)
		wantHint string
	}{
		{"sasl failed", fmt.Errorf("x: %w", kerr.SaslAuthenticationFailed), "auth", "--sasl-user"},
		{"mechanism not enabled", kerr.UnsupportedSaslMechanism, "auth", "does not enable SCRAM-SHA-512"},
		{"unknown ca", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, "tls", "--tls-ca-file"},
		{"not tls", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "tls", "does not speak TLS"},
		{"remote alert", errors.New("remote error: tls: bad certificate"), "tls", "--tls-cert-file"},
		{"plaintext at a tls listener", errors.New("invalid large response size 352518912 > limit 104857600; the first three bytes received appear to be a tls alert record for TLS v1.2; is this a plaintext connection speaking to a tls endpoint?"),
			"tls", "add --tls"},
		{"refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, "", ""},
		{"eof", io.EOF, "", ""},
		{"timeout", context.DeadlineExceeded, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fatalErr(tt.err, cfg)
			var kind string
			var ae *AuthError
			var te *TLSError
			switch {
			case errors.As(got, &ae):
				kind = "auth"
			case errors.As(got, &te):
				kind = "tls"
			case got != nil:
				t.Fatalf("fatalErr = %v (%T)", got, got)
			}
			if kind != tt.want {
				t.Fatalf("fatalErr kind = %q, want %q", kind, tt.want)
			}
			if got == nil {
				return
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("fatalErr does not wrap %v", tt.err)
			}
			h := got.(interface{ Hint() string }).Hint()
			if !strings.Contains(h, tt.wantHint) {
				t.Errorf("Hint() = %q, want it to contain %q", h, tt.wantHint)
			}
			if kind == "auth" {
				msg := got.Error()
				for _, want := range []string{"SASL authentication failed", "SCRAM-SHA-512", `"alice"`, "b:9094"} {
					if !strings.Contains(msg, want) {
						t.Errorf("error = %q, want it to contain %q", msg, want)
					}
				}
			}
			if strings.Contains(got.Error(), secret) || strings.Contains(h, secret) {
				t.Errorf("error reveals the password: %q", got)
			}
		})
	}
}
