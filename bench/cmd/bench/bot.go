//go:build linux

package main

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// BotPhase is one phase of (d).
type BotPhase struct {
	Name     string `json:"name"`
	Messages int    `json:"messages"`
	// Lost is how many of the messages never reached the topic (the bot's
	// phases fail instead: they must all arrive).
	Lost int `json:"lost"`
	// NoHistogram: the producer has no latency histogram (the seed's), so
	// the Hist fields are not measured.
	NoHistogram bool `json:"no_histogram,omitempty"`
	// RatePerS is messages / (last broker append - first post).
	RatePerS float64 `json:"messages_per_s"`
	// HistP50Ms and HistP99Ms come from the bot's own
	// cordstream_bot_publish_latency_seconds histogram (event read from the
	// Gateway -> Kafka acknowledged), interpolated within its buckets.
	HistP50Ms float64 `json:"publish_latency_p50_ms"`
	HistP99Ms float64 `json:"publish_latency_p99_ms"`
	// HistUnder20 is the share of the histogram's observations <= 20 ms
	// (one of its bucket bounds): exact, where the interpolated p99 is not.
	HistUnder20 float64 `json:"publish_latency_share_le_20ms"`
	// External is simulator post -> broker append time, per message.
	External    Dist    `json:"post_to_append"`
	CPUS        float64 `json:"bot_cpu_s"`
	CPUPerMsgUS float64 `json:"bot_cpu_us_per_message"`
}

// BotResult is (d) with one spool setting, or the seed's producer.
type BotResult struct {
	// Producer is empty for cordstream bot, ProducerSeed for the seed's
	// producer (discord.py + kafka-python).
	Producer string `json:"producer,omitempty"`
	// Spool is the bot's --spool-sync ("group", the default: fsyncs back to
	// back while reading from Discord goes on; "always": every message
	// fsynced before the next Discord event is read; a period; or "off":
	// --spool-dir off, messages wait for Kafka in memory only).
	Spool  string    `json:"spool"`
	Steady BotPhase  `json:"steady"`
	Burst  BotPhase  `json:"burst"`
	ReadyS float64   `json:"ready_s"`
	Proc   ProcStats `json:"process"`
	// Profile is set when the bot ran under the CPU profiler (--profile).
	Profile *Profile `json:"profile,omitempty"`
}

const latencyHist = "cordstream_bot_publish_latency_seconds"

// runBot measures (d): the simulator posts the workload's messages, the
// bot (a child process) captures them through the Gateway and publishes
// them to a fresh topic; first at a steady rate (latency), then as fast as
// the simulator posts (throughput).
func (h *harness) runBot(ctx context.Context, spoolSync string) (*BotResult, error) {
	topic, err := h.newTopic(ctx, "bot")
	if err != nil {
		return nil, err
	}
	defer h.dropTopic(topic)
	world, err := newSimWorld(h.cfg.seed, h.cfg.authors)
	if err != nil {
		return nil, err
	}
	defer world.Close()
	wt, err := startWatcher(ctx, h.kcfg, topic)
	if err != nil {
		return nil, err
	}
	defer wt.Close()
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	var tail stderrTail
	var profBin, profile string
	if h.cfg.profile {
		if profBin, err = h.profBin(ctx); err != nil {
			return nil, err
		}
		if profile, err = filepath.Abs(filepath.Join(h.cfg.out, "bot-spool-"+strings.ReplaceAll(spoolSync, ".", "_")+".cpu.pprof")); err != nil {
			return nil, err
		}
	}
	p, err := h.startBot(world, topic, addr, spoolSync, &tail, 100*time.Millisecond, profBin, profile)
	if err != nil {
		return nil, err
	}
	defer p.Kill()
	url := "http://" + addr + "/metrics"
	if err := waitMetric(ctx, url, "cordstream_discord_shards_connected", 1, 60*time.Second, p); err != nil {
		return nil, fmt.Errorf("bot not ready: %w\n%s", err, tail.String())
	}
	res := &BotResult{Spool: spoolSync, ReadyS: time.Since(p.start).Seconds()}
	h.log.Info("bot ready", "spool_sync", spoolSync, "seconds", fmt.Sprintf("%.2f", res.ReadyS))

	posted := 0
	phase := func(name string, rate float64, count int, d time.Duration) (BotPhase, error) {
		ph := BotPhase{Name: name}
		world.forget()
		_, before, err := scrape(ctx, url, latencyHist)
		if err != nil {
			return ph, err
		}
		p.sampleOnce()
		cpu0 := p.CPU()
		n, err := world.traffic(ctx, rate, count, d)
		if err != nil {
			return ph, err
		}
		posted += n
		if err := wt.waitFor(ctx, posted, 2*time.Minute); err != nil {
			return ph, fmt.Errorf("%s: %w\n%s", name, err, tail.String())
		}
		time.Sleep(200 * time.Millisecond) // the acks behind the appends reach the histogram
		_, after, err := scrape(ctx, url, latencyHist)
		if err != nil {
			return ph, err
		}
		p.sampleOnce()
		ph.CPUS = p.CPU() - cpu0
		ph.Messages = n
		ph.CPUPerMsgUS = ph.CPUS / float64(n) * 1e6
		diff := diffBuckets(after, before)
		ph.HistP50Ms = histQuantile(0.5, diff) * 1000
		ph.HistP99Ms = histQuantile(0.99, diff) * 1000
		ph.HistUnder20 = shareAtMost(0.02, diff)
		lat, first, last := ingestLatencies(world, wt)
		ph.External = distOf(lat)
		if span := last.Sub(first).Seconds(); span > 0 {
			ph.RatePerS = float64(n) / span
		}
		h.log.Info("bot phase", "spool_sync", spoolSync, "phase", name, "messages", n, "msgs_per_s", int(ph.RatePerS),
			"hist_p50_ms", ms(ph.HistP50Ms), "hist_p99_ms", ms(ph.HistP99Ms),
			"ext_p50_ms", ms(ph.External.P50), "ext_p99_ms", ms(ph.External.P99), "cpu_s", fmt.Sprintf("%.2f", ph.CPUS))
		return ph, nil
	}
	if res.Steady, err = phase(fmt.Sprintf("steady %.0f msgs/s", h.cfg.botRate), h.cfg.botRate, 0, h.cfg.botDuration); err != nil {
		return nil, err
	}
	if res.Burst, err = phase("as fast as the simulator posts", 0, h.cfg.botBurst, 0); err != nil {
		return nil, err
	}
	_ = p.Signal(syscall.SIGTERM)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if res.Proc, err = waitProc(wctx, p); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, tail.String())
	}
	if profile != "" {
		if res.Profile, err = h.pprofTop(ctx, profBin, profile); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// diffBuckets returns a - b bucket by bucket (both cumulative, same bounds).
func diffBuckets(a, b []bucket) []bucket {
	out := make([]bucket, len(a))
	for i := range a {
		out[i] = a[i]
		for _, x := range b {
			if x.le == a[i].le || (math.IsInf(x.le, 1) && math.IsInf(a[i].le, 1)) {
				out[i].count -= x.count
			}
		}
	}
	return out
}
