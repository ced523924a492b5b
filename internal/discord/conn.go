package discord

import (
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Gateway opcodes (Discord documentation, "Gateway Opcodes").
const (
	opDispatch       = 0
	opHeartbeat      = 1
	opIdentify       = 2
	opResume         = 6
	opReconnect      = 7
	opInvalidSession = 9
	opHello          = 10
	opHeartbeatACK   = 11
)

// closeResumable is the code this client closes with when it wants to resume
// the session later: anything but 1000/1001 keeps the session alive.
const closeResumable = 4000

// frame is one Gateway payload.
type frame struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int64          `json:"s"`
	T  *string         `json:"t"`
}

// conn is one WebSocket connection to the Gateway. Reads happen on the
// shard's goroutine only; writes are serialised here; closing is safe from any
// goroutine.
type conn struct {
	ws       *websocket.Conn
	wmu      sync.Mutex
	closed   sync.Once
	reason   atomic.Pointer[string] // why this side closed the connection
	interval time.Duration          // heartbeat interval from HELLO

	ackPending atomic.Bool
	sentAt     atomic.Int64 // unix nanos of the last heartbeat
	latency    atomic.Int64 // nanos between the last heartbeat and its ACK

	inHandler atomic.Bool // the reader is inside the event handler
	stalled   atomic.Bool // the handler held the reader for long since the last heartbeat tick
}

const writeTimeout = 10 * time.Second

func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// send writes {"op":op,"d":d}.
func (c *conn) send(op int, d any) error {
	b, err := json.Marshal(struct {
		Op int `json:"op"`
		D  any `json:"d"`
	}{op, d})
	if err != nil {
		return err
	}
	return c.write(b)
}

// heartbeat sends op 1 with the last handled sequence number (null if none).
func (c *conn) heartbeat(seq int64, now time.Time) error {
	d := []byte("null")
	if seq > 0 {
		d = strconv.AppendInt(nil, seq, 10)
	}
	c.ackPending.Store(true)
	c.sentAt.Store(now.UnixNano())
	return c.write(append(append([]byte(`{"op":1,"d":`), d...), '}'))
}

func (c *conn) acked(now time.Time) {
	c.ackPending.Store(false)
	if sent := c.sentAt.Load(); sent != 0 {
		c.latency.Store(now.UnixNano() - sent)
	}
}

// close sends a close frame with code (best effort) and closes the socket.
// The first reason given wins; it tells the reader why its read failed.
func (c *conn) close(code int, reason string) {
	c.reason.CompareAndSwap(nil, &reason)
	c.closed.Do(func() {
		msg := websocket.FormatCloseMessage(code, reason)
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		_ = c.ws.Close()
	})
}

// closedBy returns why this side closed the connection ("" if it did not).
func (c *conn) closedBy() string {
	if r := c.reason.Load(); r != nil {
		return *r
	}
	return ""
}
