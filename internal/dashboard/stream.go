package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cordstream/cordstream/internal/httpserve"
)

// The event stream (GET /api/v1/events) sends one "batch" event per
// committed batch, its id "<stream>-<seq>": stream names this process's
// stream (so that ids from an earlier run are recognised as such), seq
// counts events. A client that reconnects with Last-Event-ID gets the
// events it missed from a backlog; if they are no longer there (or the id is
// of another run) it gets a "reset" event, which says: reload from the API,
// then the latest batch event of every query it follows. A new client gets
// the latest batch event of every query it follows at once.
//
// Publishing never waits for a client: each has a buffer of events; a client
// whose buffer is full is disconnected.

// event is one framed Server-Sent Event.
type event struct {
	seq   uint64
	query string
	frame []byte
}

// hub fans events out to stream clients.
type hub struct {
	buf, backlogN, max int
	stream             string

	mu      sync.Mutex
	seq     uint64
	backlog []event          // the last backlogN events, oldest first
	last    map[string]event // the latest event of each query
	clients map[*client]struct{}
	closed  bool
}

// client is one open stream.
type client struct {
	remote  string
	queries map[string]bool
	ch      chan event
	gone    chan struct{} // closed when the hub drops the client or closes
}

func newHub(buf, backlog, max int) *hub {
	return &hub{
		buf: buf, backlogN: backlog, max: max,
		stream:  strconv.FormatInt(time.Now().UnixNano(), 36),
		last:    make(map[string]event),
		clients: make(map[*client]struct{}),
	}
}

// publish sends data as the next event of query to every client following
// it, and returns the remote addresses of the clients it dropped.
func (h *hub) publish(query string, data []byte) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	ev := event{seq: h.seq, query: query}
	ev.frame = fmt.Appendf(nil, "id: %s-%d\nevent: batch\ndata: %s\n\n", h.stream, h.seq, data)
	h.backlog = append(h.backlog, ev)
	if len(h.backlog) > h.backlogN {
		h.backlog = append(h.backlog[:0:0], h.backlog[len(h.backlog)-h.backlogN:]...)
	}
	h.last[query] = ev
	var dropped []string
	for c := range h.clients {
		if !c.queries[query] {
			continue
		}
		select {
		case c.ch <- ev:
		default:
			delete(h.clients, c)
			close(c.gone)
			dropped = append(dropped, c.remote)
		}
	}
	return dropped
}

var (
	errStreamsClosed = errors.New("the event stream is closed: the server is stopping")
	errTooMany       = errors.New("too many open event streams")
)

// subscribe registers a client for queries. lastID is the Last-Event-ID it
// sent ("" for none). It returns the events to send first, and whether the
// client must reload (reset) because the events it missed are gone.
func (h *hub) subscribe(remote string, queries []string, lastID string) (*client, []event, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, false, errStreamsClosed
	}
	if len(h.clients) >= h.max {
		return nil, nil, false, errTooMany
	}
	c := &client{remote: remote, queries: make(map[string]bool, len(queries)), ch: make(chan event, h.buf), gone: make(chan struct{})}
	for _, q := range queries {
		c.queries[q] = true
	}
	h.clients[c] = struct{}{}

	var replay []event
	if seq, ok := h.resume(lastID); ok {
		for _, ev := range h.backlog {
			if ev.seq > seq && c.queries[ev.query] {
				replay = append(replay, ev)
			}
		}
		return c, replay, false, nil
	}
	for _, q := range queries {
		if ev, ok := h.last[q]; ok {
			replay = append(replay, ev)
		}
	}
	return c, replay, lastID != "", nil
}

// resume reports whether every event after lastID is still in the backlog,
// and lastID's sequence number.
func (h *hub) resume(lastID string) (uint64, bool) {
	stream, s, ok := strings.Cut(lastID, "-")
	if !ok || stream != h.stream {
		return 0, false
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq > h.seq {
		return 0, false
	}
	if len(h.backlog) > 0 && seq+1 < h.backlog[0].seq {
		return 0, false // some of what it missed is gone
	}
	return seq, true
}

func (h *hub) unsubscribe(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(c.gone)
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.clients {
		delete(h.clients, c)
		close(c.gone)
	}
}

// streamWriteTimeout bounds one write to a stream client: a client that
// stops reading is cut off instead of holding its goroutine.
const streamWriteTimeout = 10 * time.Second

// serveEvents is GET /api/v1/events.
func (d *Dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	p, aerr := parseParams(r, "query", "last_event_id")
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	queries := p.all("query")
	if len(queries) == 0 {
		for _, q := range d.queries {
			queries = append(queries, q.Name)
		}
	}
	for _, q := range queries {
		if d.stores[q] == nil {
			writeError(w, unknownQuery(q, d.names()))
			return
		}
	}
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = p.get("last_event_id")
	}
	c, replay, reset, err := d.hub.subscribe(r.RemoteAddr, queries, lastID)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		writeError(w, &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: err.Error(),
			Hint: fmt.Sprintf("at most %d streams are served at once; the page retries by itself, or poll GET /api/v1/queries/{query}/status", d.opt.MaxStreams)})
		return
	}
	defer d.hub.unsubscribe(c)
	if err := httpserve.Stream(w); err != nil {
		writeError(w, &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "cannot stream on this connection"})
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // proxies: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	send := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send([]byte("retry: 2000\n\n")) {
		return
	}
	if reset {
		if !send([]byte("event: reset\ndata: {\"reason\":\"the events after that Last-Event-ID are not kept (too old, or of an earlier run of the server): reload from the API\"}\n\n")) {
			return
		}
	}
	for _, ev := range replay {
		if !send(ev.frame) {
			return
		}
	}
	tick := time.NewTicker(d.opt.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case ev := <-c.ch:
			if !send(ev.frame) {
				return
			}
		case <-tick.C:
			if !send([]byte(": ping\n\n")) {
				return
			}
		case <-c.gone:
			return
		case <-r.Context().Done():
			return
		}
	}
}
