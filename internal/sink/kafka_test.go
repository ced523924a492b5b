package sink

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/window"
)

// fakeKafka starts an in-process Kafka with the given topics and returns a
// producing client.
func fakeKafka(t *testing.T, topics ...string) (*kgo.Client, string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordDeliveryTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, c.ListenAddrs()[0]
}

func readTopic(t *testing.T, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(out), n, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func us(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func TestRowKey(t *testing.T) {
	tests := []struct {
		name string
		row  window.Row
		keys []string
		want string
	}{
		{"seed", window.Row{Start: us("2025-11-07T17:59:30Z"), End: us("2025-11-07T18:00:30Z"), Keys: []window.Value{{S: "alice", Valid: true}}},
			[]string{"author_name"}, `{"window_start":"2025-11-07T17:59:30Z","window_end":"2025-11-07T18:00:30Z","author_name":"alice"}`},
		{"null key and escaping", window.Row{Start: us("2025-11-07T18:00:00.5Z"), End: us("2025-11-07T18:01:00.5Z"),
			Keys: []window.Value{{}, {S: "a\"b<", Valid: true}}},
			[]string{"guild_id", "author_name"}, `{"window_start":"2025-11-07T18:00:00.5Z","window_end":"2025-11-07T18:01:00.5Z","guild_id":null,"author_name":"a\"b\u003c"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(RowKey(&tt.row, tt.keys)); got != tt.want {
				t.Errorf("RowKey = %s\nwant      %s", got, tt.want)
			}
		})
	}
}

// The count changes, the key does not: a compacted topic keeps the latest.
func TestKafkaResultsWritesOneRecordPerRow(t *testing.T) {
	cl, addr := fakeKafka(t, "counts")
	k := NewKafkaResults(cl, "counts", []string{"author_name"})
	row := func(author string, n int64) window.Row {
		return window.Row{Start: us("2025-11-07T17:59:30Z"), End: us("2025-11-07T18:00:30Z"), Keys: []window.Value{{S: author, Valid: true}}, Count: n}
	}
	ctx := context.Background()
	for _, b := range []window.Batch{
		{ID: 0, Rows: []window.Row{row("alice", 1), row("bob", 1)}},
		{ID: 1},
		{ID: 2, Rows: []window.Row{row("alice", 2)}},
	} {
		if err := k.WriteBatch(ctx, &b); err != nil {
			t.Fatalf("WriteBatch %d: %v", b.ID, err)
		}
	}
	recs := readTopic(t, addr, "counts", 3)
	var got []string
	for _, r := range recs {
		got = append(got, string(r.Key)+" "+string(r.Value))
	}
	key := func(a string) string {
		return `{"window_start":"2025-11-07T17:59:30Z","window_end":"2025-11-07T18:00:30Z","author_name":"` + a + `"}`
	}
	val := func(id, a, n string) string {
		return `{"batch_id":` + id + `,"window_start":"2025-11-07T17:59:30Z","window_end":"2025-11-07T18:00:30Z","author_name":"` + a + `","message_count":` + n + `}`
	}
	want := []string{key("alice") + " " + val("0", "alice", "1"), key("bob") + " " + val("0", "bob", "1"), key("alice") + " " + val("2", "alice", "2")}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestKafkaResultsReportsFailure(t *testing.T) {
	cl, _ := fakeKafka(t) // no topic, and no auto-creation
	k := NewKafkaResults(cl, "missing", []string{"author_name"})
	b := window.Batch{Rows: []window.Row{{Keys: []window.Value{{S: "a", Valid: true}}, Count: 1}}}
	err := k.WriteBatch(context.Background(), &b)
	if err == nil || !strings.Contains(err.Error(), "results topic missing") {
		t.Fatalf("WriteBatch = %v, want an error naming the topic", err)
	}
}
