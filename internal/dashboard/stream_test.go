package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// sse reads Server-Sent Events from a response.
type sse struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

type sseEvent struct {
	id, event, data string
	comment         bool
}

func openEvents(t *testing.T, srv *httptest.Server, path, lastID string) *sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sse{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event or comment (retry lines are skipped); it
// fails the test after 10 s.
func (s *sse) next() sseEvent {
	s.t.Helper()
	type res struct {
		ev  sseEvent
		err error
	}
	ch := make(chan res, 1)
	go func() {
		var ev sseEvent
		seen := false
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				ch <- res{err: err}
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if seen {
					ch <- res{ev: ev}
					return
				}
			case strings.HasPrefix(line, ":"):
				ev.comment, seen = true, true
			case strings.HasPrefix(line, "id: "):
				ev.id, seen = line[4:], true
			case strings.HasPrefix(line, "event: "):
				ev.event, seen = line[7:], true
			case strings.HasPrefix(line, "data: "):
				ev.data, seen = line[6:], true
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			s.t.Fatalf("event stream: %v", r.err)
		}
		return r.ev
	case <-time.After(10 * time.Second):
		s.t.Fatal("no event within 10 s")
	}
	return sseEvent{}
}

type batchEventA struct {
	Query   string  `json:"query"`
	Batch   *batchA `json:"batch"`
	Current struct {
		Window *windowA `json:"window"`
		Rows   []rowA   `json:"rows"`
	} `json:"current"`
	Windows []windowA `json:"windows"`
}

func decodeEvent(t *testing.T, ev sseEvent) batchEventA {
	t.Helper()
	if ev.event != "batch" {
		t.Fatalf("event %q (%s), want batch", ev.event, ev.data)
	}
	var b batchEventA
	if err := json.Unmarshal([]byte(ev.data), &b); err != nil {
		t.Fatal(err)
	}
	return b
}

// Each committed batch is pushed, with the leaderboard and totals the API
// gives for that batch.
func TestEventsPushEachBatch(t *testing.T) {
	q := seedQuery(window.Update)
	d := newDash(t, Options{}, q)
	srv := serve(t, d)
	f := newFeeder(t, d, q)
	es := openEvents(t, srv, "/api/v1/events", "")
	for i := range 5 {
		for k := range 30 {
			for range k%7 + i {
				f.add(us(time.Duration(i)*20*time.Second), string(rune('a'+k)))
			}
		}
		f.run()
		ev := decodeEvent(t, es.next())
		var top topA
		get(t, srv, "/api/v1/queries/messages_per_author/top?n=20", 200, &top)
		if ev.Batch.ID != int64(i) || top.Batch.ID != int64(i) || ev.Query != q.Name {
			t.Fatalf("event of batch %d (%s), API at batch %d, want %d", ev.Batch.ID, ev.Query, top.Batch.ID, i)
		}
		if len(ev.Current.Rows) != len(top.Rows) || len(top.Rows) == 0 {
			t.Fatalf("event has %d rows, API %d", len(ev.Current.Rows), len(top.Rows))
		}
		for j := range top.Rows {
			if ev.Current.Rows[j].KeyID != top.Rows[j].KeyID || ev.Current.Rows[j].Values["message_count"] != top.Rows[j].Values["message_count"] {
				t.Fatalf("rank %d: event %+v, API %+v", j+1, ev.Current.Rows[j], top.Rows[j])
			}
		}
		if ev.Current.Window.Totals["message_count"] != top.Window.Totals["message_count"] {
			t.Fatalf("window total: event %v, API %v", ev.Current.Window.Totals, top.Window.Totals)
		}
		if len(ev.Windows) == 0 {
			t.Fatal("the event names no changed window")
		}
	}
}

func TestEventsReconnect(t *testing.T) {
	q := seedQuery(window.Update)
	d := newDash(t, Options{StreamBacklog: 3}, q)
	srv := serve(t, d)
	f := newFeeder(t, d, q)
	batch := func() {
		f.add(f.eng.Watermark()+int64(2*time.Minute/time.Microsecond), "a")
		f.run()
	}
	batch()
	// A new client gets the latest batch at once.
	es := openEvents(t, srv, "/api/v1/events?query=messages_per_author", "")
	first := es.next()
	if decodeEvent(t, first).Batch.ID != 0 {
		t.Fatalf("first event %+v", first)
	}
	var ids []string
	for range 3 {
		batch()
		ids = append(ids, es.next().id)
	}
	// Reconnecting after the first of them: the two it missed, and nothing
	// else.
	es2 := openEvents(t, srv, "/api/v1/events", ids[0])
	for _, want := range []int64{2, 3} {
		if got := decodeEvent(t, es2.next()).Batch.ID; got != want {
			t.Fatalf("replayed batch %d, want %d", got, want)
		}
	}
	batch()
	if got := decodeEvent(t, es2.next()).Batch.ID; got != 4 {
		t.Fatalf("then batch %d, want 4", got)
	}
	// The same with the id in the query string (a first connection that
	// resumes).
	es3 := openEvents(t, srv, "/api/v1/events?last_event_id="+ids[2], "")
	if got := decodeEvent(t, es3.next()).Batch.ID; got != 4 {
		t.Fatalf("resumed after batch 3: batch %d, want 4", got)
	}
	// Too far behind (the backlog keeps 3 events), or an id of another run:
	// a reset, then the latest batch.
	for _, last := range []string{first.id, "0123-5", "garbage", strings.Split(first.id, "-")[0] + "-99"} {
		es := openEvents(t, srv, "/api/v1/events", last)
		if ev := es.next(); ev.event != "reset" {
			t.Fatalf("Last-Event-ID %s: event %q, want reset", last, ev.event)
		}
		if got := decodeEvent(t, es.next()).Batch.ID; got != 4 {
			t.Fatalf("after the reset: batch %d, want 4", got)
		}
	}
}

// Publishing never waits for a client: one that does not take its events
// is dropped when its buffer is full, and the others go on.
func TestSlowClientDropped(t *testing.T) {
	h := newHub(2, 8, 10)
	slow, _, _, err := h.subscribe("slow", []string{"q"}, "")
	if err != nil {
		t.Fatal(err)
	}
	fast, _, _, _ := h.subscribe("fast", []string{"q"}, "")
	other, _, _, _ := h.subscribe("other", []string{"r"}, "")
	var dropped []string
	for i := range 5 {
		dropped = append(dropped, h.publish("q", []byte{byte('0' + i)})...)
		<-fast.ch
	}
	if strings.Join(dropped, ",") != "slow" {
		t.Fatalf("dropped %v, want slow", dropped)
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("the slow client was not told it is gone")
	}
	select {
	case <-fast.gone:
		t.Fatal("the fast client was dropped")
	case <-other.gone:
		t.Fatal("a client of another query was dropped")
	default:
	}
	if len(h.clients) != 2 {
		t.Fatalf("%d clients left, want 2", len(h.clients))
	}
}

func TestEventsLimitsAndClose(t *testing.T) {
	q := seedQuery(window.Update)
	d := newDash(t, Options{MaxStreams: 2, Heartbeat: 20 * time.Millisecond}, q)
	srv := serve(t, d)
	a := openEvents(t, srv, "/api/v1/events", "")
	openEvents(t, srv, "/api/v1/events", "")
	var e errorA
	h := get(t, srv, "/api/v1/events", 503, &e)
	if e.Error.Code != "unavailable" || !strings.Contains(e.Error.Hint, "at most 2 streams") || h.Get("Retry-After") == "" {
		t.Fatalf("third stream: %+v %v", e, h)
	}
	// An idle stream gets heartbeats.
	if ev := a.next(); !ev.comment {
		t.Fatalf("idle stream: %+v, want a heartbeat comment", ev)
	}
	// Close ends the streams and refuses new ones.
	d.Close()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, a.r)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stream ended with %v, want a clean end", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end after Close")
	}
	get(t, srv, "/api/v1/events", 503, &e)
	if !strings.Contains(e.Error.Message, "stopping") {
		t.Fatalf("after Close: %+v", e)
	}
}
