package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/cordstream/cordstream/internal/kafka"
)

// envSASLPassword holds the SASL password; it has no flag on purpose.
const envSASLPassword = "CORDSTREAM_SASL_PASSWORD"

// kafkaFlags are the connection flags every Kafka-speaking command shares.
type kafkaFlags struct {
	brokers        string
	clientID       string
	tls            bool
	caFile         string
	certFile       string
	keyFile        string
	serverName     string
	saslMechanism  string
	saslUser       string
	passwordFile   string
	trustedNetwork bool
	connectTimeout time.Duration
	e              *env
}

// addKafkaFlags registers --brokers, --client-id, TLS and SASL flags on fs.
// The SASL password comes from $CORDSTREAM_SASL_PASSWORD or
// --sasl-password-file, never from a flag value.
func addKafkaFlags(fs *flagSet, e *env) *kafkaFlags {
	k := &kafkaFlags{e: e}
	fs.StringVar(&k.brokers, "brokers", "localhost:9092", "Kafka bootstrap brokers, comma-separated host:port")
	fs.StringVar(&k.clientID, "client-id", "cordstream", "Kafka client id (shows in broker logs and quotas)")
	fs.BoolVar(&k.tls, "tls", false, "connect with TLS (implied by the other --tls-* flags)")
	fs.StringVar(&k.caFile, "tls-ca-file", "", "PEM `file` of the CA that signed the brokers' certificates (default: system roots)")
	fs.StringVar(&k.certFile, "tls-cert-file", "", "PEM client certificate `file`, for brokers that require mutual TLS")
	fs.StringVar(&k.keyFile, "tls-key-file", "", "PEM private key `file` of --tls-cert-file")
	fs.StringVar(&k.serverName, "tls-server-name", "", "`name` to verify in the brokers' certificates (default: the host dialed)")
	fs.StringVar(&k.saslMechanism, "sasl-mechanism", "", "SASL `mechanism`: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (password in $"+envSASLPassword+" or --sasl-password-file)")
	fs.StringVar(&k.saslUser, "sasl-user", "", "SASL user `name`")
	fs.StringVar(&k.passwordFile, "sasl-password-file", "", "`file` holding the SASL password (one line); or set $"+envSASLPassword)
	fs.BoolVar(&k.trustedNetwork, "trusted-network", false, "the network to the brokers is trusted: allow SASL PLAIN without TLS (the password then travels in clear text)")
	fs.DurationVar(&k.connectTimeout, "connect-timeout", kafka.DefaultConnectTimeout, "how long to wait for a broker to answer at start-up")
	return k
}

// config returns the validated connection settings. Mistakes in them,
// including TLS files that cannot be read, are usage errors.
func (k *kafkaFlags) config() (kafka.Config, error) {
	cfg := kafka.Config{
		Brokers:        splitList(k.brokers),
		ClientID:       k.clientID,
		TLS:            k.tls,
		CAFile:         k.caFile,
		CertFile:       k.certFile,
		KeyFile:        k.keyFile,
		ServerName:     k.serverName,
		SASLMechanism:  k.saslMechanism,
		SASLUser:       k.saslUser,
		TrustedNetwork: k.trustedNetwork,
		ConnectTimeout: k.connectTimeout,
	}
	pw, err := k.password()
	if err != nil {
		return kafka.Config{}, err
	}
	cfg.SASLPassword = pw
	if k.connectTimeout <= 0 {
		return kafka.Config{}, usageErrorf("use a positive duration such as 10s or 2m", "--connect-timeout must be positive, not %s", k.connectTimeout)
	}
	// Options validates and reads the TLS files: fail here, before any work.
	if _, err := cfg.Options(); err != nil {
		var ce *kafka.ConfigError
		if errors.As(err, &ce) {
			return kafka.Config{}, usageErrorf(ce.Hint(), "%s", ce.Error())
		}
		return kafka.Config{}, err
	}
	return cfg, nil
}

// password reads the SASL password from $CORDSTREAM_SASL_PASSWORD or the
// --sasl-password-file (one of them, not both). A trailing newline in the
// file is not part of the password.
func (k *kafkaFlags) password() (string, error) {
	env := k.e.getenv(envSASLPassword)
	if k.passwordFile == "" {
		return env, nil
	}
	if env != "" {
		return "", usageErrorf("unset $"+envSASLPassword+" or drop --sasl-password-file",
			"the SASL password is given twice: in $%s and in --sasl-password-file", envSASLPassword)
	}
	b, err := os.ReadFile(k.passwordFile)
	if err != nil {
		return "", usageErrorf("check --sasl-password-file", "read the SASL password: %v", err)
	}
	if w := secretFileWarning(k.passwordFile); w != "" {
		newLogger(k.e, slog.LevelWarn).Warn(w, "file", k.passwordFile)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", usageErrorf("put the password on the first line of the file", "SASL password file %s is empty", k.passwordFile)
	}
	if strings.ContainsAny(pw, "\r\n") {
		return "", usageErrorf("put only the password in the file, on one line",
			"SASL password file %s has more than one line", k.passwordFile)
	}
	return pw, nil
}

// secretFileWarning returns a warning when the file holding a secret may
// be read by users other than its owner (group or other permission bits),
// as ssh warns for a private key; "" otherwise.
func secretFileWarning(path string) string {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return ""
	}
	return fmt.Sprintf("the file holding a secret is readable by other users (permissions %04o): run chmod 600 on it", fi.Mode().Perm())
}
