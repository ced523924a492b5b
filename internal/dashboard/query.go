package dashboard

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// Query describes one streaming query the dashboard shows: what it computes
// and with which settings, as GET /api/v1/queries/{name} and the page present
// it. Nothing in it may be secret: it names topics and columns, never broker
// addresses or credentials.
type Query struct {
	// Name identifies the query in URLs: 1-64 characters of a-z, 0-9, '_'
	// and '-', starting with a letter or digit.
	Name string
	// Title is an optional line for people ("Messages per author").
	Title string
	// Input names what the query reads, for people (for example the topic
	// "discord_messages").
	Input string
	// Window, Slide and Watermark are the window length, the slide between
	// window starts (tumbling windows when equal) and the watermark delay.
	Window, Slide, Watermark time.Duration
	// GroupBy are the key columns, in the order of Row.Keys.
	GroupBy []string
	// Measures are the named values of every row, in the order of
	// Row.Values; at least one. The first is the one leaderboards and
	// totals use unless a request names another.
	Measures []Measure
	// Mode is the output mode. The dashboard is fed from the engine's
	// changes whatever the mode; it decides only what "closed" means (a
	// window never closes in complete mode).
	Mode window.Mode
	// Trigger is the processing-time trigger (0: available-now).
	Trigger time.Duration
	// View is how the page draws the query.
	View View
	// Scope says whose rows the dashboard holds: one instance's share of the
	// keys, or the whole query.
	Scope Scope
}

// Measure is one named value of a row.
type Measure struct {
	// Name is the value's column name, as in the JSON Lines output
	// ("message_count"): 1-64 characters of a-z, 0-9 and '_'.
	Name string
	// Aggregate is the aggregate as Spark writes it ("count(*)",
	// "approx_count_distinct(author_id)"), for people.
	Aggregate string
	// Additive says whether the values of different keys add up to a
	// meaningful total (count and sum do; distinct counts, averages, minima
	// and maxima do not). Totals per window are given only for additive
	// measures.
	Additive bool
}

// View is how the page draws a query.
type View string

// The views.
const (
	// ViewLeaderboard: a leaderboard of the current window, the totals per
	// window as a chart, a drill-down per key. The default.
	ViewLeaderboard View = "leaderboard"
	// ViewHeatmap adds a day-of-week by hour-of-day heatmap of the totals
	// (or of one key's values). It needs tumbling windows whose length
	// divides an hour, so that every window lies in one hour of one day.
	ViewHeatmap View = "heatmap"
)

// Scope says whose rows a query's dashboard holds.
type Scope string

// The scopes.
const (
	// ScopeInstance: the rows of the keys this analyzer instance counts. With
	// one instance that is the whole query; with several, each holds its
	// share. The default.
	ScopeInstance Scope = "instance"
	// ScopeWhole: every key of the query, for example read back from the
	// compacted results topic.
	ScopeWhole Scope = "whole"
)

var (
	queryNameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	measureNameRE = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
)

// withDefaults fills the zero View and Scope.
func (q Query) withDefaults() Query {
	if q.View == "" {
		q.View = ViewLeaderboard
	}
	if q.Scope == "" {
		q.Scope = ScopeInstance
	}
	return q
}

// Validate reports what is wrong with q, saying what to change.
func (q Query) Validate() error {
	var errs []error
	if !queryNameRE.MatchString(q.Name) {
		errs = append(errs, fmt.Errorf("query name %q: use 1-64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit (for example messages_per_author)", q.Name))
	}
	if err := (window.Config{Window: q.Window, Slide: q.Slide, Watermark: q.Watermark, Mode: q.Mode, Keys: len(q.GroupBy)}).Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(q.GroupBy) == 0 {
		errs = append(errs, errors.New("group-by: no column; a dashboard shows keyed rows"))
	}
	for i, c := range q.GroupBy {
		if c == "" {
			errs = append(errs, fmt.Errorf("group-by column %d has no name", i+1))
		}
		if slices.Index(q.GroupBy, c) != i {
			errs = append(errs, fmt.Errorf("group-by column %q given twice", c))
		}
	}
	if len(q.Measures) == 0 {
		errs = append(errs, errors.New("measures: none; give at least one, for example message_count = count(*)"))
	}
	for i, m := range q.Measures {
		if !measureNameRE.MatchString(m.Name) {
			errs = append(errs, fmt.Errorf("measure %d name %q: use 1-64 characters of a-z, 0-9 and '_' (for example message_count)", i+1, m.Name))
		}
		for j := range i {
			if q.Measures[j].Name == m.Name {
				errs = append(errs, fmt.Errorf("measure %q given twice", m.Name))
			}
		}
	}
	if q.Trigger < 0 {
		errs = append(errs, fmt.Errorf("trigger %v: must not be negative (0 for available-now)", q.Trigger))
	}
	switch q.View {
	case "", ViewLeaderboard:
	case ViewHeatmap:
		if q.Window != q.Slide || q.Window <= 0 || time.Hour%q.Window != 0 {
			errs = append(errs, fmt.Errorf("view heatmap: needs tumbling windows whose length divides an hour (for example 1h or 15m), not window %v slide %v", q.Window, q.Slide))
		}
	default:
		errs = append(errs, fmt.Errorf("view %q: want %q or %q", q.View, ViewLeaderboard, ViewHeatmap))
	}
	switch q.Scope {
	case "", ScopeInstance, ScopeWhole:
	default:
		errs = append(errs, fmt.Errorf("scope %q: want %q or %q", q.Scope, ScopeInstance, ScopeWhole))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dashboard query %q: %w", q.Name, err)
	}
	return nil
}

// CountMeasure is the measure of the seed's query: messages per window and
// key, named as the JSON Lines output names it.
var CountMeasure = Measure{Name: "message_count", Aggregate: "count(*)", Additive: true}
