//go:build linux

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/window"
)

// rawConsumeResult is what the raw consumer prints last, as JSON.
type rawConsumeResult struct {
	Records int64 `json:"records"`
	Bytes   int64 `json:"bytes"`
}

// runRawConsume is the child process of measurement (a): a franz-go
// consumer with default fetch settings that reads the topic from the start
// and only counts records, the fastest any consumer of this client can be
// on this machine. It prints "first" when the first record arrives, then
// the result as JSON, and exits once it has counted want records.
func runRawConsume(args []string) error {
	flags := flag.NewFlagSet("consume", flag.ContinueOnError)
	brokers := flags.String("brokers", "127.0.0.1:9092", "bootstrap brokers")
	topic := flags.String("topic", "", "topic to read")
	want := flags.Int64("records", 0, "stop after this many records")
	process := flags.Bool("process", false, "also decode every record and count it in the seed's windows (chat.Project + window.Engine.Add), a batch end every --batch records, in the polling goroutine")
	batch := flags.Int64("batch", 500_000, "records per batch end with --process")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *topic == "" || *want <= 0 {
		return fmt.Errorf("consume: --topic and --records are required")
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.ConsumeTopics(*topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	var res rawConsumeResult
	var eng *window.Engine
	if *process {
		if eng, err = window.New(window.Config{Window: time.Minute, Slide: 30 * time.Second, Watermark: time.Minute, Mode: window.Update, Keys: 1}); err != nil {
			return err
		}
	}
	var p chat.Projection
	key := make([]window.Value, 1)
	for res.Records < *want {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("fetch %s/%d: %w", t, p, err) })
		if ferr != nil {
			return ferr
		}
		before := res.Records
		fetches.EachRecord(func(r *kgo.Record) {
			res.Records++
			res.Bytes += int64(len(r.Value))
			if eng == nil {
				return
			}
			if chat.Project(r.Value, &p) == nil {
				key[0] = window.Value{S: p.AuthorName, Valid: p.Has&chat.HasAuthorName != 0}
				eng.Add(p.Timestamp, key)
			}
			if res.Records%*batch == 0 {
				eng.RunBatch()
			}
		})
		if before == 0 && res.Records > 0 {
			fmt.Println("first")
		}
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
