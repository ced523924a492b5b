package kafka

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

const secret = "s3cret-Passw0rd"

func TestValidate(t *testing.T) {
	ok := Config{Brokers: []string{"localhost:9092"}}
	tests := []struct {
		name     string
		cfg      Config
		wantErr  string // substring of the error; "" for none
		wantHint string // substring of the hint
	}{
		{name: "minimal", cfg: ok},
		{name: "several brokers", cfg: Config{Brokers: []string{"a:9092", " b:9093", "[::1]:9094"}}},
		{name: "no brokers", cfg: Config{}, wantErr: "no Kafka brokers", wantHint: "--brokers"},
		{name: "no port", cfg: Config{Brokers: []string{"localhost"}}, wantErr: `"localhost": want host:port`, wantHint: "host:port"},
		{name: "no host", cfg: Config{Brokers: []string{":9092"}}, wantErr: "missing host"},
		{name: "port zero", cfg: Config{Brokers: []string{"h:0"}}, wantErr: "1 to 65535"},
		{name: "port too big", cfg: Config{Brokers: []string{"h:70000"}}, wantErr: "1 to 65535"},
		{name: "port not a number", cfg: Config{Brokers: []string{"h:kafka"}}, wantErr: `port "kafka"`},
		{name: "second broker bad", cfg: Config{Brokers: []string{"a:1", "b"}}, wantErr: `"b"`},
		{name: "cert without key", cfg: Config{Brokers: ok.Brokers, CertFile: "c.pem"}, wantErr: "together", wantHint: "--tls-key-file"},
		{name: "key without cert", cfg: Config{Brokers: ok.Brokers, KeyFile: "k.pem"}, wantErr: "together", wantHint: "--tls-cert-file"},
		{name: "scram ok", cfg: Config{Brokers: ok.Brokers, SASLMechanism: "SCRAM-SHA-512", SASLUser: "u", SASLPassword: secret}},
		{name: "mechanism any case", cfg: Config{Brokers: ok.Brokers, SASLMechanism: "scram-sha-256", SASLUser: "u", SASLPassword: secret}},
		{name: "plain over tls", cfg: Config{Brokers: ok.Brokers, TLS: true, SASLMechanism: "plain", SASLUser: "u", SASLPassword: secret}},
		{name: "plain on a trusted network", cfg: Config{Brokers: ok.Brokers, TrustedNetwork: true, SASLMechanism: "plain", SASLUser: "u", SASLPassword: secret}},
		{name: "plain without tls", cfg: Config{Brokers: ok.Brokers, SASLMechanism: "plain", SASLUser: "u", SASLPassword: secret},
			wantErr: "PLAIN without TLS would send the password in clear text", wantHint: "--trusted-network"},
		{name: "scram without tls", cfg: Config{Brokers: ok.Brokers, SASLMechanism: "SCRAM-SHA-256", SASLUser: "u", SASLPassword: secret}},
		{name: "unknown mechanism", cfg: Config{Brokers: ok.Brokers, SASLMechanism: "GSSAPI", SASLUser: "u", SASLPassword: secret},
			wantErr: `unknown SASL mechanism "GSSAPI"`, wantHint: "SCRAM-SHA-512"},
		{name: "mechanism without user", cfg: Config{Brokers: ok.Brokers, SASLMechanism: "PLAIN", SASLPassword: secret},
			wantErr: "needs a user", wantHint: "--sasl-user"},
		{name: "mechanism without password", cfg: Config{Brokers: ok.Brokers, SASLMechanism: "SCRAM-SHA-256", SASLUser: "u"},
			wantErr: "needs a password", wantHint: "CORDSTREAM_SASL_PASSWORD"},
		{name: "user without mechanism", cfg: Config{Brokers: ok.Brokers, SASLUser: "u"},
			wantErr: "no SASL mechanism", wantHint: "--sasl-mechanism"},
		{name: "password without mechanism", cfg: Config{Brokers: ok.Brokers, SASLPassword: secret},
			wantErr: "no SASL mechanism"},
		{name: "negative timeout", cfg: Config{Brokers: ok.Brokers, ConnectTimeout: -time.Second}, wantErr: "negative connect timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %q, want it to contain %q", err, tt.wantErr)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Validate() error is %T, want *ConfigError", err)
			}
			if ce.Hint() == "" || !strings.Contains(ce.Hint(), tt.wantHint) {
				t.Errorf("Hint() = %q, want it to contain %q", ce.Hint(), tt.wantHint)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(ce.Hint(), secret) {
				t.Errorf("error or hint reveals the password: %q / %q", err, ce.Hint())
			}
		})
	}
}

// testPKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate (PEM) into a temporary directory.
type testPKI struct {
	dir                 string
	caFile              string
	certFile, keyFile   string // client
	otherKeyFile        string // a key that does not match certFile
	caCert              *x509.Certificate
	serverCert          tls.Certificate
	serverCertUntrusted tls.Certificate // signed by another CA
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	caKey, caCert := newCA(t, "test CA")
	p.caCert = caCert
	p.caFile = writePEM(t, p.dir, "ca.pem", "CERTIFICATE", caCert.Raw)

	leaf := func(ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, usage x509.ExtKeyUsage) (*ecdsa.PrivateKey, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(time.Now().UnixNano()),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  nil,
			DNSNames:     []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return key, der
	}
	ckey, cder := leaf(caCert, caKey, "client", x509.ExtKeyUsageClientAuth)
	p.certFile = writePEM(t, p.dir, "client.crt", "CERTIFICATE", cder)
	p.keyFile = writePEM(t, p.dir, "client.key", "PRIVATE KEY", marshalKey(t, ckey))
	okey, _ := leaf(caCert, caKey, "other", x509.ExtKeyUsageClientAuth)
	p.otherKeyFile = writePEM(t, p.dir, "other.key", "PRIVATE KEY", marshalKey(t, okey))

	skey, sder := leaf(caCert, caKey, "localhost", x509.ExtKeyUsageServerAuth)
	p.serverCert = tls.Certificate{Certificate: [][]byte{sder}, PrivateKey: skey}
	otherCAKey, otherCA := newCA(t, "other CA")
	ukey, uder := leaf(otherCA, otherCAKey, "localhost", x509.ExtKeyUsageServerAuth)
	p.serverCertUntrusted = tls.Certificate{Certificate: [][]byte{uder}, PrivateKey: ukey}
	return p
}

func newCA(t testing.TB, cn string) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func marshalKey(t testing.TB, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// optValues builds a client from the options (it does not connect) and
// returns it for OptValue lookups.
func optClient(t *testing.T, opts []kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("kgo.NewClient(Options()...) = %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestOptions(t *testing.T) {
	pki := newTestPKI(t)
	notPEM := filepath.Join(pki.dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	brokers := []string{"127.0.0.1:9092", "127.0.0.2:9092"}

	tests := []struct {
		name       string
		cfg        Config
		wantErr    string
		wantTLS    bool
		wantCA     bool
		wantCert   bool
		wantServer string
		wantMech   string
	}{
		{name: "plaintext", cfg: Config{Brokers: brokers, ClientID: "bot-1"}},
		{name: "tls with system roots", cfg: Config{Brokers: brokers, TLS: true}, wantTLS: true},
		{name: "ca file implies tls", cfg: Config{Brokers: brokers, CAFile: pki.caFile}, wantTLS: true, wantCA: true},
		{name: "server name implies tls", cfg: Config{Brokers: brokers, ServerName: "kafka.internal"}, wantTLS: true, wantServer: "kafka.internal"},
		{name: "mutual tls", cfg: Config{Brokers: brokers, CAFile: pki.caFile, CertFile: pki.certFile, KeyFile: pki.keyFile},
			wantTLS: true, wantCA: true, wantCert: true},
		{name: "missing ca file", cfg: Config{Brokers: brokers, CAFile: filepath.Join(pki.dir, "nope.pem")}, wantErr: "nope.pem"},
		{name: "ca file not pem", cfg: Config{Brokers: brokers, CAFile: notPEM}, wantErr: "holds no PEM certificate"},
		{name: "key does not match cert", cfg: Config{Brokers: brokers, CertFile: pki.certFile, KeyFile: pki.otherKeyFile},
			wantErr: "load TLS client certificate"},
		{name: "missing cert file", cfg: Config{Brokers: brokers, CertFile: filepath.Join(pki.dir, "x.crt"), KeyFile: pki.keyFile},
			wantErr: "x.crt"},
		{name: "plain", cfg: Config{Brokers: brokers, TrustedNetwork: true, SASLMechanism: "PLAIN", SASLUser: "u", SASLPassword: secret}, wantMech: "PLAIN"},
		{name: "plain in clear text", cfg: Config{Brokers: brokers, SASLMechanism: "PLAIN", SASLUser: "u", SASLPassword: secret}, wantErr: "clear text"},
		{name: "scram-sha-256", cfg: Config{Brokers: brokers, SASLMechanism: "scram-sha-256", SASLUser: "u", SASLPassword: secret}, wantMech: "SCRAM-SHA-256"},
		{name: "scram-sha-512 over tls", cfg: Config{Brokers: brokers, CAFile: pki.caFile, SASLMechanism: "SCRAM-SHA-512", SASLUser: "u", SASLPassword: secret},
			wantTLS: true, wantCA: true, wantMech: "SCRAM-SHA-512"},
		{name: "invalid config", cfg: Config{}, wantErr: "no Kafka brokers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := tt.cfg.Options()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Options() error = %v, want it to contain %q", err, tt.wantErr)
				}
				if h, ok := err.(interface{ Hint() string }); !ok || h.Hint() == "" {
					t.Errorf("Options() error %T has no hint", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Options() = %v", err)
			}
			cl := optClient(t, opts)
			if got := cl.OptValue(kgo.SeedBrokers); !slices.Equal(got.([]string), brokers) {
				t.Errorf("seed brokers = %v, want %v", got, brokers)
			}
			if tt.cfg.ClientID != "" {
				if got := cl.OptValue(kgo.ClientID); got != tt.cfg.ClientID {
					t.Errorf("client id = %v, want %q", got, tt.cfg.ClientID)
				}
			}
			tc, _ := cl.OptValue(kgo.DialTLSConfig).(*tls.Config)
			if gotTLS := tc != nil; gotTLS != tt.wantTLS {
				t.Fatalf("TLS configured = %v, want %v", gotTLS, tt.wantTLS)
			}
			if tc != nil {
				if tc.MinVersion < tls.VersionTLS12 {
					t.Errorf("MinVersion = %x, want >= TLS 1.2", tc.MinVersion)
				}
				if got := tc.RootCAs != nil; got != tt.wantCA {
					t.Errorf("RootCAs set = %v, want %v", got, tt.wantCA)
				}
				if got := len(tc.Certificates) == 1; got != tt.wantCert {
					t.Errorf("client certificate set = %v, want %v", got, tt.wantCert)
				}
				if tc.ServerName != tt.wantServer {
					t.Errorf("ServerName = %q, want %q", tc.ServerName, tt.wantServer)
				}
			}
			mechs, _ := cl.OptValue(kgo.SASL).([]sasl.Mechanism)
			var gotMech string
			if len(mechs) == 1 {
				gotMech = mechs[0].Name()
			} else if len(mechs) > 1 {
				t.Fatalf("%d SASL mechanisms, want at most 1", len(mechs))
			}
			if gotMech != tt.wantMech {
				t.Errorf("SASL mechanism = %q, want %q", gotMech, tt.wantMech)
			}
		})
	}
}

// The CA file's pool must verify a certificate the CA signed and reject one
// another CA signed: the pool really holds the file's certificate.
func TestOptionsCAPoolVerifies(t *testing.T) {
	pki := newTestPKI(t)
	cfg := Config{Brokers: []string{"127.0.0.1:1"}, CAFile: pki.caFile}
	tc, err := cfg.tlsConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cert tls.Certificate
		ok   bool
	}{{"signed by the CA", pki.serverCert, true}, {"signed by another CA", pki.serverCertUntrusted, false}} {
		leaf, err := x509.ParseCertificate(c.cert.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: tc.RootCAs, DNSName: "localhost"})
		if (err == nil) != c.ok {
			t.Errorf("%s: Verify error = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func TestConfigStringHidesPassword(t *testing.T) {
	cfg := Config{Brokers: []string{"k:9092"}, ClientID: "c", TLS: true, SASLMechanism: "scram-sha-512", SASLUser: "alice", SASLPassword: secret}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		got := fmt.Sprintf(verb, cfg)
		if strings.Contains(got, secret) {
			t.Errorf("Sprintf(%q, cfg) = %q reveals the password", verb, got)
		}
		if !strings.Contains(got, "alice") || !strings.Contains(got, "SCRAM-SHA-512") {
			t.Errorf("Sprintf(%q, cfg) = %q, want the user and mechanism", verb, got)
		}
	}
	if got := fmt.Sprintf("%v", &cfg); strings.Contains(got, secret) {
		t.Errorf("Sprintf(%%v, &cfg) = %q reveals the password", got)
	}
}
