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
		})
		if before == 0 && res.Records > 0 {
			fmt.Println("first")
		}
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
