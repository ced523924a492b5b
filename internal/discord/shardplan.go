package discord

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ShardPlan is the part of a bot's shards one process runs (manual
// sharding): Count is num_shards, the total every process of the bot uses
// in IDENTIFY; IDs are the shards this process opens. The zero plan means
// every shard Discord recommends.
type ShardPlan struct {
	Count int   // 0: Discord's recommendation (then IDs is empty)
	IDs   []int // ascending, distinct, each < Count; empty: all of Count
}

// ParseShardIDs parses a list of shard ids such as "0,1,2" or "0-7,12"
// (ranges inclusive, spaces allowed around items). The result is ascending;
// a shard named twice (or in overlapping ranges) is an error.
func ParseShardIDs(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("no shard ids: give a list such as 0,1,2 or a range such as 0-7")
	}
	var ids []int
	seen := map[int]bool{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("shard ids %q: an empty item (two commas, or a comma at an end)", s)
		}
		lo, hi := item, item
		if a, b, ok := strings.Cut(item, "-"); ok {
			lo, hi = strings.TrimSpace(a), strings.TrimSpace(b)
		}
		from, err := parseShardID(lo, item)
		if err != nil {
			return nil, err
		}
		to, err := parseShardID(hi, item)
		if err != nil {
			return nil, err
		}
		if to < from {
			return nil, fmt.Errorf("shard ids: range %q runs backwards; write it low-high, e.g. %d-%d", item, to, from)
		}
		if to-from+1 > MaxShards || len(ids)+to-from+1 > MaxShards {
			return nil, fmt.Errorf("shard ids: more than %d shards", MaxShards)
		}
		for id := from; id <= to; id++ {
			if seen[id] {
				return nil, fmt.Errorf("shard ids: shard %d is named twice (in %q); name each shard once", id, item)
			}
			seen[id] = true
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func parseShardID(s, item string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= MaxShards {
		return 0, fmt.Errorf("shard ids: %q in %q is not a shard id (a whole number from 0 to %d)", s, item, MaxShards-1)
	}
	return n, nil
}

// NewShardPlan checks the flags of manual sharding: count (--shard-count,
// 0 when not given) and ids (--shard-ids, "" when not given). Ids need a
// count: every process of the bot must IDENTIFY with the same total, and
// Discord's recommendation may change between the starts of two processes.
func NewShardPlan(count int, ids string) (ShardPlan, error) {
	if count < 0 || count > MaxShards {
		return ShardPlan{}, fmt.Errorf("shard count %d is not between 1 and %d (or 0 for Discord's recommendation)", count, MaxShards)
	}
	if strings.TrimSpace(ids) == "" {
		return ShardPlan{Count: count}, nil
	}
	if count == 0 {
		return ShardPlan{}, errors.New("shard ids need a shard count: give the total number of shards of the bot, " +
			"the same in every process (e.g. --shard-count 16 --shard-ids 0-7 here and --shard-count 16 --shard-ids 8-15 in the other)")
	}
	list, err := ParseShardIDs(ids)
	if err != nil {
		return ShardPlan{}, err
	}
	if last := list[len(list)-1]; last >= count {
		return ShardPlan{}, fmt.Errorf("shard %d does not exist with a shard count of %d: shard ids run from 0 to %d", last, count, count-1)
	}
	return ShardPlan{Count: count, IDs: list}, nil
}

// Shards returns the total and the shards this process runs, given the
// count Discord recommends.
func (p ShardPlan) Shards(recommended int) (count int, ids []int) {
	count = p.Count
	if count == 0 {
		count = recommended
	}
	if len(p.IDs) > 0 {
		return count, slices.Clone(p.IDs)
	}
	ids = make([]int, count)
	for i := range ids {
		ids[i] = i
	}
	return count, ids
}

// Check checks the plan against what /gateway/bot says. An error means
// Discord would refuse the plan; the warnings, things to know.
//
// Large bot sharding: Discord moves bots near 150,000 guilds to it and then
// grants a max_concurrency above 1 (16 or a multiple); their shard count
// must be a multiple of the shard number Discord assigned (16 with a
// max_concurrency of 16), else it closes the connection with 4010 invalid
// shard. The count /gateway/bot recommends is always valid, and so is any
// multiple of it.
func (p ShardPlan) Check(gb GatewayBot) (warnings []string, err error) {
	rec := gb.Shards
	mc := gb.SessionStartLimit.MaxConcurrency
	count, ids := p.Shards(rec)
	if count < 1 {
		return nil, fmt.Errorf("Discord recommended %d shards: no shard to run; give --shard-count", rec)
	}
	if p.Count == 0 {
		return nil, nil // Discord's own count
	}
	if mc > 1 && count%mc != 0 && (rec < 1 || count%rec != 0) {
		return nil, fmt.Errorf("Discord runs this bot with large bot sharding (max_concurrency %d): the shard count must be a multiple of %d, "+
			"not %d, or Discord closes every shard with 4010 invalid shard; use Discord's recommended %d (or a multiple of %d) in every process",
			mc, mc, count, rec, mc)
	}
	if rec > 0 && count < rec {
		warnings = append(warnings, fmt.Sprintf("the shard count %d is below the %d Discord recommends: a shard that would hold more than 2,500 guilds "+
			"is refused with 4011 sharding required", count, rec))
	}
	if len(ids) < count {
		whole := ""
		if mc > 1 && count%mc == 0 {
			var half []int
			for id := range count {
				if id%mc < mc/2 {
					half = append(half, id)
				}
			}
			whole = fmt.Sprintf(", or give each process whole rate-limit buckets (the bucket is the shard id modulo %d: "+
				"e.g. --shard-ids %s in one process and the rest in another can start together)", mc, shardRange(half))
		}
		warnings = append(warnings, fmt.Sprintf("this process runs %d of %d shards: run the others in other processes with the same --shard-count. "+
			"Each paces its own IDENTIFYs only: start them one after another (about %s apart)%s; otherwise Discord answers an IDENTIFY "+
			"of another process's rate-limit bucket with INVALID_SESSION and the shard retries",
			len(ids), count, startSpread(len(ids), mc), whole))
	}
	if rem := gb.SessionStartLimit.Remaining; rem < len(ids) {
		warnings = append(warnings, fmt.Sprintf("Discord's daily session-start budget has %d starts left for %d shards: some will wait for it to reset", rem, len(ids)))
	}
	return warnings, nil
}

// startSpread is how long n shards of one process take to identify with
// max_concurrency mc: one per bucket per 5 s.
func startSpread(n, mc int) string {
	mc = max(mc, 1)
	rounds := (n + mc - 1) / mc
	return strconv.Itoa(rounds*5) + " s"
}

// shardRange writes ascending ids compactly for a log: "0-7,12".
func shardRange(ids []int) string {
	var b strings.Builder
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(ids[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(ids[j]))
		}
		i = j + 1
	}
	return b.String()
}
