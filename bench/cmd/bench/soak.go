//go:build linux

package main

import (
	"context"
	"fmt"
	"math"
	"syscall"
	"time"
)

// SoakProc is the memory of one process over the soak.
type SoakProc struct {
	Name            string  `json:"name"`
	First           int64   `json:"first_after_warmup_bytes"`
	Last            int64   `json:"last_bytes"`
	Min             int64   `json:"min_after_warmup_bytes"`
	Max             int64   `json:"max_after_warmup_bytes"`
	Mean            float64 `json:"mean_after_warmup_bytes"`
	SlopeMiBPerHour float64 `json:"slope_mib_per_hour"`
	// Growth is the fitted growth over the samples after warm-up.
	GrowthMiB float64   `json:"fitted_growth_mib"`
	CPUS      float64   `json:"cpu_s"`
	RSS       []int64   `json:"rss_bytes"`
	T         []float64 `json:"t_s"`
}

// SoakResult is the --soak run.
type SoakResult struct {
	Duration string   `json:"duration"`
	RatePerS float64  `json:"rate_per_s"`
	Messages int      `json:"messages"`
	Analysed int64    `json:"analysed"`
	WarmupS  float64  `json:"warmup_s"`
	Analyzer SoakProc `json:"analyzer"`
	Bot      SoakProc `json:"bot"`
	Flat     bool     `json:"flat"`
	Verdict  string   `json:"verdict"`
}

// runSoak runs the pipeline (simulator -> bot -> Kafka -> analyzer with
// the seed's 5 s trigger) at a steady rate for --soak, sampling the
// resident set of the bot and the analyzer every --soak-interval.
func (h *harness) runSoak(ctx context.Context) (*SoakResult, error) {
	cfg := h.cfg
	topic, err := h.newTopic(ctx, "soak")
	if err != nil {
		return nil, err
	}
	defer h.dropTopic(topic)
	world, err := newSimWorld(cfg.seed, cfg.authors)
	if err != nil {
		return nil, err
	}
	defer world.Close()
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	var botTail stderrTail
	bot, err := h.startBot(world, topic, addr, h.cfg.botConfigs[0], &botTail, time.Second, "", "")
	if err != nil {
		return nil, err
	}
	defer bot.Kill()
	bl := newBatchLog()
	an, err := h.startAnalyzer(topic, bl, time.Second)
	if err != nil {
		return nil, err
	}
	defer h.dropQueryTopics(bl.group)
	defer an.Kill()
	if err := waitMetric(ctx, "http://"+addr+"/metrics", "cordstream_discord_shards_connected", 1, time.Minute, bot); err != nil {
		return nil, fmt.Errorf("bot not ready: %w\n%s", err, botTail.String())
	}
	<-bl.assigned

	warmup := cfg.soakWarmup
	if warmup <= 0 {
		warmup = max(cfg.soak/3, 3*time.Minute)
	}
	res := &SoakResult{Duration: cfg.soak.String(), RatePerS: cfg.soakRate, WarmupS: warmup.Seconds(),
		Analyzer: SoakProc{Name: "cordstream analyze"}, Bot: SoakProc{Name: "cordstream bot"}}
	start := time.Now()
	tctx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	posted := make(chan int, 1)
	go func() {
		n, _ := world.traffic(tctx, cfg.soakRate, 0, cfg.soak)
		world.forget()
		posted <- n
	}()
	h.log.Info("soak started", "rate", cfg.soakRate, "duration", cfg.soak)
	tick := time.NewTicker(cfg.soakEvery)
	defer tick.Stop()
	sampleLoop := true
	for sampleLoop {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case n := <-posted:
			res.Messages = n
			sampleLoop = false
		case <-tick.C:
			// SentLimit keeps the simulator small; the harness forgets posts.
			world.forget()
			t := time.Since(start).Seconds()
			for _, sp := range []struct {
				s *SoakProc
				p *proc
			}{{&res.Analyzer, an}, {&res.Bot, bot}} {
				sp.p.sampleOnce()
				sp.s.T = append(sp.s.T, t)
				sp.s.RSS = append(sp.s.RSS, sp.p.RSS())
			}
			if len(res.Analyzer.T)%30 == 0 {
				h.log.Info("soak", "elapsed", time.Since(start).Round(time.Second), "analyzer_rss_mib", res.Analyzer.RSS[len(res.Analyzer.RSS)-1]>>20,
					"bot_rss_mib", res.Bot.RSS[len(res.Bot.RSS)-1]>>20, "analysed", bl.covered())
			}
			if an.exited() || bot.exited() {
				return nil, fmt.Errorf("a process of the pipeline exited during the soak\n%s\n%s", bl.tail.String(), botTail.String())
			}
		}
	}
	time.Sleep(2*cfg.e2eTrigger + time.Second)
	res.Analysed = bl.covered()
	_ = an.Signal(syscall.SIGTERM)
	_ = bot.Signal(syscall.SIGTERM)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ast, err := waitProc(wctx, an)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, bl.tail.String())
	}
	bst, err := waitProc(wctx, bot)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, botTail.String())
	}
	res.Analyzer.CPUS, res.Bot.CPUS = ast.CPUS, bst.CPUS
	res.Flat = true
	var verdicts []string
	for _, sp := range []*SoakProc{&res.Analyzer, &res.Bot} {
		flat := sp.summarise(res.WarmupS)
		res.Flat = res.Flat && flat
		verdicts = append(verdicts, fmt.Sprintf("%s: fitted growth %+.1f MiB over %.0f min after warm-up (%+.1f%% of its mean %s)",
			sp.Name, sp.GrowthMiB, (sp.T[len(sp.T)-1]-res.WarmupS)/60, 100*sp.GrowthMiB*(1<<20)/sp.Mean, mib(int64(sp.Mean))))
	}
	res.Verdict = fmt.Sprintf("%s. Flat means a fitted growth within 5%% of the mean or 2 MiB: %s.", joinSemi(verdicts), map[bool]string{true: "flat", false: "NOT flat"}[res.Flat])
	if res.Analysed < int64(res.Messages) {
		res.Verdict += fmt.Sprintf(" The analyzer counted %d of %d messages by the end.", res.Analysed, res.Messages)
	}
	return res, nil
}

// summarise fills the statistics after warm-up and reports flatness.
func (s *SoakProc) summarise(warmup float64) bool {
	var xs, ys []float64
	s.Min = math.MaxInt64
	for i, t := range s.T {
		if t < warmup {
			continue
		}
		xs = append(xs, t)
		ys = append(ys, float64(s.RSS[i]))
		if s.First == 0 {
			s.First = s.RSS[i]
		}
		s.Min, s.Max = min(s.Min, s.RSS[i]), max(s.Max, s.RSS[i])
		s.Mean += float64(s.RSS[i])
	}
	if len(ys) < 2 {
		s.Min = 0
		return false
	}
	s.Mean /= float64(len(ys))
	s.Last = s.RSS[len(s.RSS)-1]
	b := slope(xs, ys) // bytes per second
	s.SlopeMiBPerHour = b * 3600 / (1 << 20)
	s.GrowthMiB = b * (xs[len(xs)-1] - xs[0]) / (1 << 20)
	return s.GrowthMiB <= 2 || s.GrowthMiB*(1<<20) <= 0.05*s.Mean
}

func joinSemi(xs []string) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += "; "
		}
		out += x
	}
	return out
}
