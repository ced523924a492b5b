package cli

import (
	"errors"

	"github.com/cordstream/cordstream/internal/kafka"
)

// kafkaFlags are the connection flags every Kafka-speaking command shares.
type kafkaFlags struct {
	brokers string
	e       *env
}

// addKafkaFlags registers --brokers, --client-id, TLS and SASL flags on fs.
// The SASL password comes from $CORDSTREAM_SASL_PASSWORD or
// --sasl-password-file, never from a flag value.
func addKafkaFlags(fs *flagSet, e *env) *kafkaFlags {
	k := &kafkaFlags{e: e}
	fs.StringVar(&k.brokers, "brokers", "localhost:9092", "Kafka bootstrap brokers, comma-separated host:port")
	return k
}

// config returns the validated connection settings.
func (k *kafkaFlags) config() (kafka.Config, error) {
	return kafka.Config{}, errors.New("TODO")
}
