package query

import (
	"slices"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// The presets: the common questions, usable by name (docs/QUERIES.md shows
// each with its Spark equivalent). Each is checked against Spark batch by
// batch in every mode it allows (TestPresetsEqualSpark).
var presets = []Query{
	{
		// The seed's query: messages per author in 1-minute windows sliding
		// every 30 s, 1-minute watermark, update mode.
		Name: "seed", Window: time.Minute, Slide: 30 * time.Second, Watermark: time.Minute,
		GroupBy:    []string{"author_name"},
		Aggregates: []Aggregate{{Func: window.Count, Alias: "message_count"}},
		Mode:       window.Update,
	},
	{
		// Messages per channel per 5 minutes, with the characters they
		// hold (Spark's length(content): sum, average, shortest, longest).
		Name: "channel-activity", Window: 5 * time.Minute, Slide: 5 * time.Minute, Watermark: 2 * time.Minute,
		GroupBy: []string{"channel_id"},
		Aggregates: []Aggregate{
			{Func: window.Count, Alias: "message_count"},
			{Func: window.Sum, Expr: Expr{Column: "content", Length: true}, Alias: "total_chars"},
			{Func: window.Avg, Expr: Expr{Column: "content", Length: true}, Alias: "avg_chars"},
			{Func: window.Min, Expr: Expr{Column: "content", Length: true}, Alias: "min_chars"},
			{Func: window.Max, Expr: Expr{Column: "content", Length: true}, Alias: "max_chars"},
		},
		Mode: window.Update,
	},
	{
		// Distinct active members per channel per hour.
		Name: "active-members", Window: time.Hour, Slide: time.Hour, Watermark: 10 * time.Minute,
		GroupBy:    []string{"channel_id"},
		Aggregates: []Aggregate{{Func: window.ApproxCountDistinct, Expr: Expr{Column: "author_id"}, Alias: "active_members"}},
		Mode:       window.Update,
	},
	{
		// Messages per guild per hour: the data of a day-by-hour heatmap.
		Name: "guild-heatmap", Window: time.Hour, Slide: time.Hour, Watermark: 10 * time.Minute,
		GroupBy:    []string{"guild_id"},
		Aggregates: []Aggregate{{Func: window.Count, Alias: "message_count"}},
		Mode:       window.Update,
	},
	{
		// The most active channels of each day, busiest first: a sort Spark
		// allows in complete mode only (all state is kept).
		Name: "top-channels", Window: 24 * time.Hour, Slide: 24 * time.Hour,
		GroupBy:    []string{"channel_id"},
		Aggregates: []Aggregate{{Func: window.Count, Alias: "message_count"}},
		Mode:       window.Complete,
		OrderBy:    []Order{{Column: "window"}, {Column: "message_count", Desc: true}},
	},
	{
		// Activity sessions per member: a session ends after 10 minutes
		// without a message; each is emitted once it has closed.
		Name: "member-sessions", SessionGap: 10 * time.Minute, Watermark: 10 * time.Minute,
		GroupBy:    []string{"author_name"},
		Aggregates: []Aggregate{{Func: window.Count, Alias: "message_count"}},
		Mode:       window.Append,
	},
}

// Preset returns the preset of that name (a copy).
func Preset(name string) (Query, bool) {
	for _, p := range presets {
		if p.Name == name {
			p.GroupBy = slices.Clone(p.GroupBy)
			p.Aggregates = slices.Clone(p.Aggregates)
			p.OrderBy = slices.Clone(p.OrderBy)
			p.Outputs = slices.Clone(p.Outputs)
			return p, true
		}
	}
	return Query{}, false
}

// PresetNames returns the presets' names.
func PresetNames() []string {
	var out []string
	for _, p := range presets {
		out = append(out, p.Name)
	}
	return out
}

// Modes returns the output modes a query allows, as Spark allows them:
// session windows append and complete; a sort complete only; otherwise all
// three.
func (q Query) Modes() []window.Mode {
	switch {
	case len(q.OrderBy) > 0:
		return []window.Mode{window.Complete}
	case q.SessionGap != 0:
		return []window.Mode{window.Append, window.Complete}
	}
	return []window.Mode{window.Update, window.Append, window.Complete}
}
