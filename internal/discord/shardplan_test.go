package discord

import (
	"slices"
	"strings"
	"testing"
)

func TestParseShardIDs(t *testing.T) {
	good := []struct {
		in   string
		want []int
	}{
		{"0", []int{0}},
		{"3,1,2", []int{1, 2, 3}},
		{"0-3", []int{0, 1, 2, 3}},
		{"0-7,12", []int{0, 1, 2, 3, 4, 5, 6, 7, 12}},
		{" 12 , 4-5 ", []int{4, 5, 12}},
		{"5-5", []int{5}},
		{"65535", []int{65535}},
	}
	for _, c := range good {
		got, err := ParseShardIDs(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ParseShardIDs(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	bad := []struct{ in, says string }{
		{"", "no shard ids"},
		{"  ", "no shard ids"},
		{"1,,2", "empty item"},
		{"1,", "empty item"},
		{"a", "not a shard id"},
		{"-1", "not a shard id"},
		{"1.5", "not a shard id"},
		{"7-3", "runs backwards"},
		{"1,1", "named twice"},
		{"0-4,3-6", "shard 3 is named twice"},
		{"65536", "not a shard id"},
		{"0-", "not a shard id"},
		{"99999999999999999999", "not a shard id"},
	}
	for _, c := range bad {
		got, err := ParseShardIDs(c.in)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("ParseShardIDs(%q) = %v, %v; want an error saying %q", c.in, got, err, c.says)
		}
	}
}

func TestNewShardPlan(t *testing.T) {
	p, err := NewShardPlan(0, "")
	if err != nil || p.Count != 0 || p.IDs != nil {
		t.Errorf("no flags: %+v, %v", p, err)
	}
	if count, ids := p.Shards(3); count != 3 || !slices.Equal(ids, []int{0, 1, 2}) {
		t.Errorf("Discord's 3: %d %v", count, ids)
	}
	p, err = NewShardPlan(16, "8-15")
	if err != nil {
		t.Fatal(err)
	}
	if count, ids := p.Shards(3); count != 16 || len(ids) != 8 || ids[0] != 8 {
		t.Errorf("16, 8-15: %d %v", count, ids)
	}
	p, err = NewShardPlan(4, "")
	if count, ids := p.Shards(9); err != nil || count != 4 || len(ids) != 4 {
		t.Errorf("count 4 alone: %d %v %v", count, ids, err)
	}
	for _, c := range []struct {
		count int
		ids   string
		says  string
	}{
		{0, "0-3", "need a shard count"},
		{-1, "", "not between 1 and"},
		{MaxShards + 1, "", "not between 1 and"},
		{8, "0-8", "shard 8 does not exist with a shard count of 8: shard ids run from 0 to 7"},
		{8, "2,2", "named twice"},
	} {
		if _, err := NewShardPlan(c.count, c.ids); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("NewShardPlan(%d, %q): %v; want an error saying %q", c.count, c.ids, err, c.says)
		}
	}
}

func TestShardPlanCheck(t *testing.T) {
	gb := func(shards, mc, remaining int) GatewayBot {
		return GatewayBot{Shards: shards, SessionStartLimit: SessionStartLimit{Total: 1000, Remaining: remaining, MaxConcurrency: mc}}
	}
	// Discord's own count: nothing to say.
	if w, err := (ShardPlan{}).Check(gb(2, 1, 1000)); err != nil || len(w) != 0 {
		t.Errorf("recommended: %v %v", w, err)
	}
	// All shards of an explicit count at least Discord's: fine.
	if w, err := (ShardPlan{Count: 4}).Check(gb(2, 1, 1000)); err != nil || len(w) != 0 {
		t.Errorf("count 4, all: %v %v", w, err)
	}
	// Large bot sharding: a count not a multiple of max_concurrency is refused.
	_, err := (ShardPlan{Count: 40, IDs: []int{0, 1}}).Check(gb(48, 16, 5000))
	if err == nil || !strings.Contains(err.Error(), "multiple of 16") || !strings.Contains(err.Error(), "recommended 48") {
		t.Errorf("large bot, 40 shards: %v", err)
	}
	// ... a multiple is fine.
	if _, err := (ShardPlan{Count: 64}).Check(gb(48, 16, 5000)); err != nil {
		t.Errorf("large bot, 64 shards: %v", err)
	}
	// Below the recommendation, part of the shards, a short budget: warnings.
	w, err := (ShardPlan{Count: 4, IDs: []int{0, 1}}).Check(gb(8, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(w, "\n")
	for _, want := range []string{"below the 8 Discord recommends", "runs 2 of 4 shards", "10 s apart", "1 starts left for 2 shards"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	w, err = (ShardPlan{Count: 64, IDs: []int{0, 16, 32, 48}}).Check(gb(64, 16, 1000))
	if err != nil || !strings.Contains(strings.Join(w, "\n"), "--shard-ids 0-7,16-23,32-39,48-55") {
		t.Errorf("large bot, part of the shards: %v %v; want the whole-bucket example", w, err)
	}
	if _, err := (ShardPlan{}).Check(gb(0, 1, 1)); err == nil {
		t.Error("Discord recommending 0 shards: no error")
	}
}
