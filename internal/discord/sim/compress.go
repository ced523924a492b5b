package sim

import (
	"bytes"
	"compress/zlib"

	"github.com/gorilla/websocket"
	"github.com/klauspost/compress/zstd"
)

// compression is the transport compression of a connection (?compress=).
type compression int

const (
	compressNone compression = iota
	compressZlibStream
	compressZstdStream
)

func parseCompression(v string) (compression, bool) {
	switch v {
	case "":
		return compressNone, true
	case "zlib-stream":
		return compressZlibStream, true
	case "zstd-stream":
		return compressZstdStream, true
	}
	return compressNone, false
}

// encoder turns JSON payloads into WebSocket frames for one connection.
// zlib-stream: one deflate context for the whole connection, each payload
// flushed with Z_SYNC_FLUSH so it ends with 00 00 ff ff. zstd-stream: one
// zstd stream, each payload flushed as complete blocks. Otherwise text
// frames, or a complete zlib stream per payload when the IDENTIFY asked for
// compress:true.
type encoder struct {
	mode compression
	buf  bytes.Buffer
	zw   *zlib.Writer
	zs   *zstd.Encoder
}

func newEncoder(mode compression) (*encoder, error) {
	e := &encoder{mode: mode}
	switch mode {
	case compressZlibStream:
		e.zw = zlib.NewWriter(&e.buf)
	case compressZstdStream:
		zs, err := zstd.NewWriter(&e.buf, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			return nil, err
		}
		e.zs = zs
	}
	return e, nil
}

func (e *encoder) encode(payload []byte, perPayloadZlib bool) (int, []byte, error) {
	e.buf.Reset()
	switch e.mode {
	case compressZlibStream:
		if _, err := e.zw.Write(payload); err != nil {
			return 0, nil, err
		}
		if err := e.zw.Flush(); err != nil {
			return 0, nil, err
		}
	case compressZstdStream:
		if _, err := e.zs.Write(payload); err != nil {
			return 0, nil, err
		}
		if err := e.zs.Flush(); err != nil {
			return 0, nil, err
		}
	default:
		if !perPayloadZlib {
			return websocket.TextMessage, payload, nil
		}
		zw := zlib.NewWriter(&e.buf)
		if _, err := zw.Write(payload); err != nil {
			return 0, nil, err
		}
		if err := zw.Close(); err != nil {
			return 0, nil, err
		}
	}
	out := append([]byte(nil), e.buf.Bytes()...)
	return websocket.BinaryMessage, out, nil
}

func (e *encoder) close() {
	if e.zs != nil {
		_ = e.zs.Close()
	}
}
