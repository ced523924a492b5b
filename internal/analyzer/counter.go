package analyzer

import (
	"sync"
	"unsafe"

	"github.com/cordstream/cordstream/internal/window"
)

// counter is the engine's half of reading a batch. The reading goroutine
// decodes, de-duplicates and routes each record and hands what to count
// (an event time, a key tuple, how many times) to the counter in chunks; a
// goroutine of the counter's own adds them to the engine, in the order
// given. The two halves run on two cores: one goroutine doing both was the
// critical path of a batch's reading.
//
// Between startCounting and close, nothing else may use the engine.
type counter struct {
	eng   *window.Engine
	nkeys int
	cur   *countChunk
	full  chan *countChunk
	free  chan *countChunk
	done  chan struct{}
}

// countChunk is events to count: ts[i] counted n[i] times with the key
// tuple keys[i*nkeys:(i+1)*nkeys]. The keys' strings alias text, where add
// copies them: the counting goroutine then reads them in sequence instead of
// at scattered places of records another core decoded.
type countChunk struct {
	ts, n []int64
	keys  []window.Value
	text  []byte
}

// countChunkLen is how many events a chunk holds; chunksInFlight how many
// chunks a batch uses (filled, being counted, free); countChunkText the
// initial room for a chunk's key text.
const (
	countChunkLen  = 1024
	chunksInFlight = 4
	countChunkText = 32 << 10
)

// chunks keeps the chunks of finished batches for the next ones: a batch of
// a few records, every trigger of a quiet stream, allocates none.
var chunks = sync.Pool{New: func() any { return new(countChunk) }}

func getChunk(nkeys int) *countChunk {
	ch := chunks.Get().(*countChunk)
	if cap(ch.ts) < countChunkLen {
		ch.ts, ch.n = make([]int64, 0, countChunkLen), make([]int64, 0, countChunkLen)
	}
	if cap(ch.keys) < countChunkLen*nkeys {
		ch.keys = make([]window.Value, 0, countChunkLen*nkeys)
	}
	if cap(ch.text) < countChunkText {
		ch.text = make([]byte, 0, countChunkText)
	}
	return ch
}

// putChunk pools an empty chunk (counted, or never filled). Its keys past
// their length are cleared: some point into text arrays the chunk no longer
// has, or into records. A text buffer grown for unusually long keys is not
// kept.
func putChunk(ch *countChunk) {
	clear(ch.keys[:cap(ch.keys)])
	if cap(ch.text) > 4*countChunkText {
		ch.text = nil
	}
	chunks.Put(ch)
}

func startCounting(eng *window.Engine, nkeys int) *counter {
	c := &counter{eng: eng, nkeys: nkeys, full: make(chan *countChunk, chunksInFlight),
		free: make(chan *countChunk, chunksInFlight), done: make(chan struct{})}
	for range chunksInFlight {
		c.free <- getChunk(nkeys)
	}
	c.cur = <-c.free
	go func() {
		defer close(c.done)
		for ch := range c.full {
			for i, ts := range ch.ts {
				keys := ch.keys[i*c.nkeys : (i+1)*c.nkeys]
				for range ch.n[i] {
					c.eng.Add(ts, keys)
				}
			}
			// Keys past the new length still point into text, which the next
			// adds overwrite: nothing reads them (putChunk clears them).
			ch.ts, ch.n, ch.keys, ch.text = ch.ts[:0], ch.n[:0], ch.keys[:0], ch.text[:0]
			c.free <- ch
		}
	}()
	return c
}

// add counts an event n times (keys and their text are copied). The engine
// copies what it keeps of the keys (window.Engine.Add), so the text is
// reused once the chunk is counted.
func (c *counter) add(ts, n int64, keys []window.Value) {
	ch := c.cur
	ch.ts = append(ch.ts, ts)
	ch.n = append(ch.n, n)
	for _, k := range keys {
		if k.Valid && len(k.S) > 0 {
			if len(ch.text)+len(k.S) > cap(ch.text) {
				// A new array: the strings already made keep the old one.
				ch.text = make([]byte, 0, max(2*cap(ch.text), len(k.S)))
			}
			at := len(ch.text)
			ch.text = append(ch.text, k.S...)
			k.S = unsafe.String(&ch.text[at], len(k.S))
		}
		ch.keys = append(ch.keys, k)
	}
	if len(ch.ts) == countChunkLen {
		c.full <- ch
		c.cur = <-c.free
	}
}

// close counts what is left and waits until every event is in the engine.
// Call it once, whatever became of the reading.
func (c *counter) close() {
	if len(c.cur.ts) > 0 {
		c.full <- c.cur
	} else {
		putChunk(c.cur)
	}
	c.cur = nil
	close(c.full)
	<-c.done
	for len(c.free) > 0 {
		putChunk(<-c.free)
	}
}
