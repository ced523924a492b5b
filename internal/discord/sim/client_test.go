package sim

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/klauspost/compress/zstd"
)

// A raw gateway client for protocol tests (deliberately not a library).

type payload struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int            `json:"s"`
	T  *string         `json:"t"`
}

func (p payload) String() string {
	t := "null"
	if p.T != nil {
		t = *p.T
	}
	return "op=" + itoa(p.Op) + " t=" + t + " d=" + string(p.D)
}

func itoa(i int) string { return string(mustJSON(i)) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

type testClient struct {
	t    *testing.T
	ws   *websocket.Conn
	mode string // "", "zlib-stream", "zstd-stream"
	in   chan result
	seq  int

	mu     sync.Mutex
	frames [][]byte // raw binary frames seen (for checks)
}

type result struct {
	p   payload
	err error
}

// frameReader feeds WebSocket binary frames to a stream decompressor.
type frameReader struct {
	c   *testClient
	cur []byte
}

func (f *frameReader) Read(p []byte) (int, error) {
	for len(f.cur) == 0 {
		mt, b, err := f.c.ws.ReadMessage()
		if err != nil {
			return 0, err
		}
		if mt != websocket.BinaryMessage {
			return 0, errors.New("text frame on a compressed stream")
		}
		f.c.addFrame(b)
		f.cur = b
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}

// dial connects to path (""/"resume") with query (v=10&encoding=json added
// unless query already has v).
func dial(t *testing.T, s *Server, path, query string) *testClient {
	t.Helper()
	u := s.GatewayURL() + "/" + path
	q, _ := url.ParseQuery(query)
	if _, ok := q["v"]; !ok {
		q.Set("v", "10")
		q.Set("encoding", "json")
	}
	ws, _, err := websocket.DefaultDialer.Dial(u+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	c := &testClient{t: t, ws: ws, mode: q.Get("compress"), in: make(chan result, 1000)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.readLoop()
	}()
	t.Cleanup(func() {
		ws.Close()
		<-done
	})
	return c
}

func (c *testClient) addFrame(b []byte) {
	c.mu.Lock()
	c.frames = append(c.frames, b)
	c.mu.Unlock()
}

func (c *testClient) binaryFrames() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.frames...)
}

// readLoop decodes payloads into c.in until the connection fails.
func (c *testClient) readLoop() {
	var dec *json.Decoder
	for {
		var p payload
		var err error
		switch c.mode {
		case "zlib-stream", "zstd-stream":
			if dec == nil {
				fr := &frameReader{c: c}
				var r io.Reader
				if c.mode == "zlib-stream" {
					r, err = zlib.NewReader(fr)
				} else {
					r, err = zstd.NewReader(fr, zstd.WithDecoderConcurrency(1))
				}
				if err == nil {
					dec = json.NewDecoder(r)
				}
			}
			if err == nil {
				err = dec.Decode(&p)
			}
		default:
			var mt int
			var b []byte
			mt, b, err = c.ws.ReadMessage()
			if err == nil && mt == websocket.BinaryMessage {
				c.addFrame(b)
				var zr io.ReadCloser
				if zr, err = zlib.NewReader(bytes.NewReader(b)); err == nil {
					b, err = io.ReadAll(zr)
				}
			}
			if err == nil {
				err = json.Unmarshal(b, &p)
			}
		}
		c.in <- result{p, err}
		if err != nil {
			return
		}
	}
}

func (c *testClient) sendRaw(b []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *testClient) send(op int, d any) {
	c.t.Helper()
	c.sendRaw(mustJSON(map[string]any{"op": op, "d": d}))
}

// errTimeout is returned by next when nothing arrived in time.
var errTimeout = errors.New("timeout")

// next returns the next payload, or the error that ended the connection
// (repeatedly), or errTimeout.
func (c *testClient) next(timeout time.Duration) (payload, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-c.in:
		if r.err != nil {
			c.in <- r // keep reporting it
			return r.p, r.err
		}
		if r.p.S != nil {
			c.seq = *r.p.S
		}
		return r.p, nil
	case <-timer.C:
		return payload{}, errTimeout
	}
}

const wait = 5 * time.Second

func (c *testClient) read() payload {
	c.t.Helper()
	p, err := c.next(wait)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return p
}

// expect reads until a payload with op (and event type t for dispatches),
// skipping heartbeat traffic and, when waiting for a dispatch, dispatches
// of other types.
func (c *testClient) expect(op int, t string) payload {
	c.t.Helper()
	for {
		p := c.read()
		if p.Op == op && (t == "" || eventType(p) == t) {
			return p
		}
		if p.Op == opHeartbeatACK || p.Op == opHeartbeat || (op == opDispatch && p.Op == opDispatch) {
			continue
		}
		c.t.Fatalf("got %s, want op %d %s", p, op, t)
	}
}

// expectClose reads until the server closes, and checks the code.
func (c *testClient) expectClose(code int) {
	c.t.Helper()
	for {
		p, err := c.next(wait)
		if err == nil {
			if p.Op == opDispatch || p.Op == opHello || p.Op == opHeartbeatACK {
				continue
			}
			c.t.Fatalf("got %s, want close %d", p, code)
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("got error %v, want close %d", err, code)
		}
		if ce.Code != code {
			c.t.Fatalf("close code: got %d (%q), want %d", ce.Code, ce.Text, code)
		}
		return
	}
}

// expectSilence checks nothing but heartbeat traffic arrives for d.
func (c *testClient) expectSilence(d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Until(deadline) > 0 {
		p, err := c.next(time.Until(deadline))
		if err != nil {
			if errors.Is(err, errTimeout) {
				return
			}
			c.t.Fatalf("while expecting silence: %v", err)
		}
		c.t.Fatalf("got %s, want nothing", p)
	}
}

type readyData struct {
	V                int              `json:"v"`
	User             map[string]any   `json:"user"`
	Guilds           []map[string]any `json:"guilds"`
	SessionID        string           `json:"session_id"`
	ResumeGatewayURL string           `json:"resume_gateway_url"`
	Shard            []int            `json:"shard"`
	Application      map[string]any   `json:"application"`
	Extra            map[string]any   `json:"-"`
}

func identifyPayload(token string, intents uint64) map[string]any {
	return map[string]any{
		"token":      token,
		"intents":    intents,
		"properties": map[string]string{"os": "linux", "browser": "test", "device": "test"},
	}
}

// hello reads HELLO and returns the interval in ms.
func (c *testClient) hello() int {
	c.t.Helper()
	p := c.read()
	if p.Op != opHello {
		c.t.Fatalf("first payload: got %s, want HELLO", p)
	}
	var d struct {
		HeartbeatInterval int `json:"heartbeat_interval"`
	}
	if err := json.Unmarshal(p.D, &d); err != nil {
		c.t.Fatal(err)
	}
	return d.HeartbeatInterval
}

// login reads HELLO, identifies and returns READY's data.
func (c *testClient) login(token string, intents uint64, extra map[string]any) readyData {
	c.t.Helper()
	c.hello()
	d := identifyPayload(token, intents)
	for k, v := range extra {
		d[k] = v
	}
	c.send(opIdentify, d)
	p := c.expect(opDispatch, "READY")
	var r readyData
	if err := json.Unmarshal(p.D, &r); err != nil {
		c.t.Fatal(err)
	}
	return r
}

// messages reads n MESSAGE_CREATE payloads (skipping other dispatches).
func (c *testClient) messages(n int) []map[string]any {
	c.t.Helper()
	var out []map[string]any
	for len(out) < n {
		p := c.expect(opDispatch, "MESSAGE_CREATE")
		var m map[string]any
		if err := json.Unmarshal(p.D, &m); err != nil {
			c.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func eventType(p payload) string {
	if p.T == nil {
		return ""
	}
	return *p.T
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func websocketCloseMessage(code int) []byte { return websocket.FormatCloseMessage(code, "") }
