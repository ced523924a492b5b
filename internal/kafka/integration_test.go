package kafka_test

// Integration tests against the real Apache Kafka broker of scripts/kafka
// (scripts/test starts it). Without it they skip, or fail under
// CORDSTREAM_REQUIRE_KAFKA=1.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/kafka"
	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestTopicsCreateDescribeDelete(t *testing.T) {
	cl := kafkatest.Client(t)
	ctx := ctxT(t, time.Minute)
	name := kafkatest.TopicName(t)
	spec := kafka.TopicSpec{Name: name, Partitions: 3, ReplicationFactor: 1,
		Configs: map[string]string{"retention.ms": "3600000", "cleanup.policy": "delete"}}

	created, err := kafka.EnsureTopic(ctx, cl, spec)
	if err != nil || !created {
		t.Fatalf("first EnsureTopic = (%v, %v), want (true, nil)", created, err)
	}
	t.Cleanup(func() { _ = kafka.DeleteTopic(context.Background(), cl, name) })

	// Creating it again is not an error, and changes nothing.
	again := spec
	again.Partitions = 5
	created, err = kafka.EnsureTopic(ctx, cl, again)
	if err != nil || created {
		t.Fatalf("second EnsureTopic = (%v, %v), want (false, nil)", created, err)
	}

	info, err := kafka.DescribeTopic(ctx, cl, name)
	if err != nil {
		t.Fatalf("DescribeTopic = %v", err)
	}
	if info.Name != name || info.ID == "" || info.ReplicationFactor != 1 {
		t.Errorf("info = %+v, want name %s, an id, replication factor 1", info, name)
	}
	if got := len(info.Partitions); got != 3 {
		t.Fatalf("%d partitions, want 3", got)
	}
	for i, p := range info.Partitions {
		if p.Partition != int32(i) || p.Leader < 0 || len(p.Replicas) != 1 || p.Replicas[0] != p.Leader || len(p.ISR) != 1 {
			t.Errorf("partition %d = %+v, want partition %d led by its only replica, in sync", i, p, i)
		}
	}
	got := map[string]kafka.TopicConfig{}
	for _, c := range info.Configs {
		got[c.Key] = c
	}
	if c := got["retention.ms"]; c.Value != "3600000" || c.Source != "topic" {
		t.Errorf("retention.ms = %+v, want 3600000 set on the topic", c)
	}
	if c, ok := got["segment.bytes"]; !ok || c.Source == "topic" {
		t.Errorf("segment.bytes = %+v (present %v), want a default", c, ok)
	}

	topics, err := kafka.ListTopics(ctx, cl)
	if err != nil {
		t.Fatalf("ListTopics = %v", err)
	}
	if !contains(topics, name) {
		t.Errorf("ListTopics = %v, want it to include %s", topics, name)
	}

	if err := kafka.DeleteTopic(ctx, cl, name); err != nil {
		t.Fatalf("DeleteTopic = %v", err)
	}
	// Deletion is asynchronous in Kafka; describe until it is gone.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err = kafka.DescribeTopic(ctx, cl, name)
		if err != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var nf *kafka.TopicNotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("DescribeTopic after delete = %v (%T), want *TopicNotFoundError", err, err)
	}
	if want := "cordstream topics create --topic " + name; !strings.Contains(nf.Hint(), want) {
		t.Errorf("Hint() = %q, want it to contain %q", nf.Hint(), want)
	}
	if err := kafka.DeleteTopic(ctx, cl, name); !errors.As(err, &nf) {
		t.Errorf("DeleteTopic of a deleted topic = %v, want *TopicNotFoundError", err)
	}
}

func TestEnsureTopicBrokerRefusals(t *testing.T) {
	cl := kafkatest.Client(t)
	ctx := ctxT(t, 30*time.Second)
	tests := []struct {
		name     string
		spec     kafka.TopicSpec
		wantErr  error
		wantHint string
	}{
		{"replication factor above broker count", kafka.TopicSpec{Partitions: 1, ReplicationFactor: 3},
			kerr.InvalidReplicationFactor, "--replication-factor 1"},
		{"unknown config", kafka.TopicSpec{Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"no.such.config": "1"}},
			kerr.InvalidConfig, "--config"},
		{"bad config value", kafka.TopicSpec{Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "soon"}},
			kerr.InvalidConfig, "--config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Name = kafkatest.TopicName(t)
			created, err := kafka.EnsureTopic(ctx, cl, tt.spec)
			if created {
				_ = kafka.DeleteTopic(context.Background(), cl, tt.spec.Name)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("EnsureTopic = (%v, %v), want %v", created, err, tt.wantErr)
			}
			var te *kafka.TopicError
			if !errors.As(err, &te) || !strings.Contains(te.Hint(), tt.wantHint) {
				t.Errorf("error %v (%T): want a *TopicError whose hint contains %q", err, err, tt.wantHint)
			}
		})
	}
}

func TestDescribeMissingTopic(t *testing.T) {
	cl := kafkatest.Client(t)
	_, err := kafka.DescribeTopic(ctxT(t, 30*time.Second), cl, kafkatest.TopicName(t))
	var nf *kafka.TopicNotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("DescribeTopic = %v (%T), want *TopicNotFoundError", err, err)
	}
}

// schema compiles schema/discord_message.schema.json.
func schema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "schema", "discord_message.schema.json")
	s, err := jsonschema.NewCompiler().Compile(path)
	if err != nil {
		t.Fatalf("compile %s: %v", path, err)
	}
	return s
}

func validate(t testing.TB, s *jsonschema.Schema, value []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(value))
	if err != nil {
		t.Fatalf("record is not JSON: %v\n%s", err, value)
	}
	if err := s.Validate(v); err != nil {
		t.Errorf("record does not validate against the schema: %v\n%s", err, value)
	}
}

func sampleMessages() []chat.Message {
	ts := time.Date(2024, 5, 17, 13, 45, 1, 234_000_000, time.UTC)
	edited := ts.Add(time.Minute)
	return []chat.Message{
		{Kind: chat.KindCreate, MessageID: "1240000000000000001", GuildID: chat.Ptr("1100000000000000001"),
			ChannelID: "1200000000000000001", AuthorID: chat.Ptr("1000000000000000001"), AuthorName: chat.Ptr("alice"),
			AuthorGlobalName: chat.Ptr("Alice A."), Content: chat.Ptr("hello \"kafka\" ✓\n"), Timestamp: ts},
		{Kind: chat.KindCreate, MessageID: "1240000000000000002", ChannelID: "1200000000000000002",
			AuthorID: chat.Ptr("1000000000000000002"), AuthorName: chat.Ptr("bot"), AuthorIsBot: true,
			Content: chat.Ptr(""), Timestamp: ts.Add(time.Second)}, // a DM: no guild
		{Kind: chat.KindUpdate, MessageID: "1240000000000000001", GuildID: chat.Ptr("1100000000000000001"),
			ChannelID: "1200000000000000001", AuthorID: chat.Ptr("1000000000000000001"), AuthorName: chat.Ptr("alice"),
			Content: chat.Ptr("hello, edited"), Timestamp: ts, EditedTimestamp: &edited},
		{Kind: chat.KindDelete, MessageID: "1240000000000000003", GuildID: chat.Ptr("1100000000000000001"),
			ChannelID: "1200000000000000001", Timestamp: ts.Add(2 * time.Second)},
	}
}

// consume reads n records from the start of topic.
func consume(t *testing.T, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := kafkatest.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := ctxT(t, 30*time.Second)
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records before the timeout", len(recs), n)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		recs = append(recs, fs.Records()...)
	}
	return recs
}

func TestProduceConsumeWireFormat(t *testing.T) {
	topic := kafkatest.Topic(t, 3)
	prod := kafkatest.Client(t, kgo.DefaultProduceTopic(topic))
	ctx := ctxT(t, 30*time.Second)
	msgs := sampleMessages()
	for i := range msgs {
		v, err := chat.Encode(&msgs[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := prod.ProduceSync(ctx, &kgo.Record{Key: msgs[i].Key(), Value: v}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	s := schema(t)
	recs := consume(t, topic, len(msgs))
	if len(recs) != len(msgs) {
		t.Fatalf("consumed %d records, want %d", len(recs), len(msgs))
	}
	byKindAndID := map[string]chat.Message{}
	for _, m := range msgs {
		byKindAndID[string(m.Kind)+m.MessageID] = m
	}
	for _, r := range recs {
		validate(t, s, r.Value)
		got, err := chat.Decode(r.Value)
		if err != nil {
			t.Fatalf("decode %s: %v", r.Value, err)
		}
		want, ok := byKindAndID[string(got.Kind)+got.MessageID]
		if !ok {
			t.Fatalf("unexpected record %s", r.Value)
		}
		if !bytes.Equal(r.Key, want.Key()) {
			t.Errorf("key = %q, want %q", r.Key, want.Key())
		}
		wantJSON, _ := chat.Encode(&want)
		gotJSON, _ := chat.Encode(&got)
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Errorf("round trip through Kafka:\n got %s\nwant %s", gotJSON, wantJSON)
		}
	}
	// One author's records share a key, hence a partition, hence an order.
	var alice []int32
	for _, r := range recs {
		if string(r.Key) == "1000000000000000001" {
			alice = append(alice, r.Partition)
		}
	}
	if len(alice) != 2 || alice[0] != alice[1] {
		t.Errorf("alice's records landed on partitions %v, want one partition", alice)
	}
}

func TestSecureListener(t *testing.T) {
	sec := kafkatest.SecureListener(t)
	for _, mech := range []string{kafka.MechanismSCRAMSHA256, kafka.MechanismSCRAMSHA512, kafka.MechanismPlain} {
		t.Run(mech, func(t *testing.T) {
			cfg := sec.Config(mech)
			ctx := ctxT(t, time.Minute)
			cl, err := kafka.NewClient(ctx, cfg, nil)
			if err != nil {
				t.Fatalf("NewClient over SASL_SSL with %s: %v", mech, err)
			}
			defer cl.Close()

			// The whole path works over TLS + SASL: create, produce, consume.
			topic := kafkatest.TopicName(t)
			if _, err := kafka.EnsureTopic(ctx, cl, kafka.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 1}); err != nil {
				t.Fatalf("EnsureTopic: %v", err)
			}
			defer kafka.DeleteTopic(context.Background(), cl, topic)
			m := sampleMessages()[0]
			v, _ := chat.Encode(&m)
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: m.Key(), Value: v}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			cons, err := kafka.NewClient(ctx, cfg, nil, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			fs := cons.PollFetches(ctx)
			if errs := fs.Errors(); len(errs) > 0 {
				t.Fatalf("fetch: %v", errs[0].Err)
			}
			if recs := fs.Records(); len(recs) != 1 || !bytes.Equal(recs[0].Value, v) {
				t.Fatalf("consumed %d records, want the one produced", len(recs))
			}
		})
	}
}

func TestSecureListenerWithClientCertificate(t *testing.T) {
	sec := kafkatest.SecureListener(t)
	if sec.CertFile == "" || sec.KeyFile == "" {
		t.Fatalf("no client certificate: $%s and $%s are not set (scripts/kafka start --secure sets them)",
			kafkatest.EnvTLSCertFile, kafkatest.EnvTLSKeyFile)
	}
	cfg := sec.Config(kafka.MechanismSCRAMSHA512)
	cfg.CertFile, cfg.KeyFile = sec.CertFile, sec.KeyFile
	cl, err := kafka.NewClient(ctxT(t, 30*time.Second), cfg, nil)
	if err != nil {
		t.Fatalf("NewClient with a client certificate: %v", err)
	}
	cl.Close()
}

func TestWrongPasswordFailsFast(t *testing.T) {
	sec := kafkatest.SecureListener(t)
	const wrong = "not-the-password-41"
	for _, mech := range []string{kafka.MechanismSCRAMSHA256, kafka.MechanismSCRAMSHA512, kafka.MechanismPlain} {
		t.Run(mech, func(t *testing.T) {
			cfg := sec.Config(mech)
			cfg.SASLPassword = wrong
			start := time.Now()
			cl, err := kafka.NewClient(ctxT(t, time.Minute), cfg, nil)
			elapsed := time.Since(start)
			if err == nil {
				cl.Close()
				t.Fatal("NewClient with a wrong password succeeded")
			}
			if elapsed > 5*time.Second {
				t.Errorf("failure took %s, want within a few seconds", elapsed)
			}
			var ae *kafka.AuthError
			if !errors.As(err, &ae) || !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Fatalf("error = %v (%T), want *AuthError wrapping SASL_AUTHENTICATION_FAILED", err, err)
			}
			for _, want := range []string{"SASL authentication failed", mech, sec.User} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error = %q, want it to contain %q", err, want)
				}
			}
			if strings.Contains(err.Error()+ae.Hint(), wrong) {
				t.Errorf("error or hint reveals the password: %q", err)
			}
			t.Logf("%s: %v (after %s)", mech, err, elapsed.Round(time.Millisecond))
		})
	}
}

func TestUnknownUserFailsFast(t *testing.T) {
	sec := kafkatest.SecureListener(t)
	cfg := sec.Config(kafka.MechanismSCRAMSHA256)
	cfg.SASLUser = "nobody"
	start := time.Now()
	_, err := kafka.NewClient(ctxT(t, time.Minute), cfg, nil)
	var ae *kafka.AuthError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), `"nobody"`) {
		t.Fatalf("error = %v, want *AuthError naming the user", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("failure took %s, want within a few seconds", elapsed)
	}
}

// The secure listener with a CA that did not sign its certificate: a TLS
// error at once, not a timeout.
func TestSecureListenerWrongCA(t *testing.T) {
	sec := kafkatest.SecureListener(t)
	cfg := sec.Config(kafka.MechanismSCRAMSHA512)
	cfg.CAFile = "" // system roots do not know the test CA
	start := time.Now()
	_, err := kafka.NewClient(ctxT(t, time.Minute), cfg, nil)
	var te *kafka.TLSError
	if !errors.As(err, &te) {
		t.Fatalf("error = %v (%T), want *TLSError", err, err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("failure took %s, want within a few seconds", elapsed)
	}
}

// A plaintext client at the SASL_SSL port: recognised at once as a TLS
// listener; the error names the address and the hint says to add --tls.
func TestPlaintextClientAtSecurePort(t *testing.T) {
	sec := kafkatest.SecureListener(t)
	cfg := kafka.Config{Brokers: sec.Brokers}
	start := time.Now()
	_, err := kafka.NewClient(ctxT(t, time.Minute), cfg, nil)
	var te *kafka.TLSError
	if !errors.As(err, &te) {
		t.Fatalf("error = %v (%T), want *TLSError", err, err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("failure took %s, want within a few seconds", elapsed)
	}
	if !strings.Contains(err.Error(), sec.Brokers[0]) || !strings.Contains(te.Hint(), "--tls") {
		t.Errorf("error = %q, hint = %q: want the address and a TLS hint", err, te.Hint())
	}
}

// A TLS client without SASL at the SASL_SSL port: the broker closes the
// connection; the hint points at SASL.
func TestTLSClientWithoutSASLAtSecurePort(t *testing.T) {
	sec := kafkatest.SecureListener(t)
	cfg := sec.Config("")
	cfg.SASLUser, cfg.SASLPassword = "", ""
	cfg.ConnectTimeout = 3 * time.Second
	_, err := kafka.NewClient(ctxT(t, time.Minute), cfg, nil)
	var ce *kafka.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v (%T), want *ConnectError", err, err)
	}
	if !strings.Contains(err.Error(), sec.Brokers[0]) || !strings.Contains(ce.Hint(), "--sasl-mechanism") {
		t.Errorf("error = %q, hint = %q: want the address and a SASL hint", err, ce.Hint())
	}
}

var seedTimestamp = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$`)

// kcat, a client independent of ours, reads a record cordstream wrote: the
// seed's five fields are there in the seed's format, and the record
// validates against the schema.
func TestKcatReadsCordstreamRecord(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv(kafkatest.EnvRequire) == "1" {
			t.Fatal("kcat not found; scripts/test installs it (apt-get install -y kcat)")
		}
		t.Skip("kcat not found; run scripts/test, which installs it")
	}
	topic := kafkatest.Topic(t, 1)
	m := sampleMessages()[0]
	v, err := chat.Encode(&m)
	if err != nil {
		t.Fatal(err)
	}
	prod := kafkatest.Client(t)
	ctx := ctxT(t, 30*time.Second)
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: m.Key(), Value: v}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	read := func(t *testing.T, args ...string) []byte {
		t.Helper()
		args = append(args, "-C", "-t", topic, "-o", "beginning", "-c", "1", "-e", "-q", "-f", "%k\n%s\n")
		out, err := exec.CommandContext(ctx, kcat, args...).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
			}
			t.Fatalf("kcat: %v", err)
		}
		return out
	}
	check := func(t *testing.T, out []byte) {
		t.Helper()
		key, value, ok := strings.Cut(strings.TrimSuffix(string(out), "\n"), "\n")
		if !ok {
			t.Fatalf("kcat printed %q, want key and value lines", out)
		}
		if key != *m.AuthorID {
			t.Errorf("key = %q, want the author id %q", key, *m.AuthorID)
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(value), &rec); err != nil {
			t.Fatalf("value is not JSON: %v\n%s", err, value)
		}
		want := map[string]string{
			"author_id":   *m.AuthorID,
			"author_name": *m.AuthorName,
			"channel_id":  m.ChannelID,
			"content":     *m.Content,
		}
		for k, w := range want {
			if got, ok := rec[k].(string); !ok || got != w {
				t.Errorf("%s = %#v, want %q", k, rec[k], w)
			}
		}
		ts, _ := rec["message_timestamp"].(string)
		if !seedTimestamp.MatchString(ts) || ts != "2024-05-17 13:45:01.234" {
			t.Errorf("message_timestamp = %#v, want \"2024-05-17 13:45:01.234\" (yyyy-MM-dd HH:mm:ss.SSS, UTC)", rec["message_timestamp"])
		}
		for _, extra := range []string{"message_id", "guild_id", "author_is_bot", "event_kind"} {
			if _, ok := rec[extra]; !ok {
				t.Errorf("record lacks %q: %s", extra, value)
			}
		}
		validate(t, schema(t), []byte(value))
	}

	t.Run("plaintext", func(t *testing.T) {
		check(t, read(t, "-b", strings.Join(brokers, ",")))
	})
	// PLAIN, not SCRAM: librdkafka before 2.6.1 (Debian 12's kcat links
	// 2.0.2) computes a SCRAM proof that Kafka 4.x rejects (a nonce bug fixed
	// upstream in 2.6.1). franz-go's SCRAM is tested in TestSecureListener.
	t.Run("SASL_SSL PLAIN", func(t *testing.T) {
		sec := kafkatest.SecureListener(t)
		check(t, read(t, "-b", strings.Join(sec.Brokers, ","),
			"-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=PLAIN",
			"-X", "sasl.username="+sec.User, "-X", "sasl.password="+sec.Password,
			"-X", "ssl.ca.location="+sec.CAFile))
	})
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
