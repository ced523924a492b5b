package httpserve

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCheckAddr(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:9090", ":9090", "[::1]:0", "localhost:80"} {
		if err := CheckAddr(ok); err != nil {
			t.Errorf("CheckAddr(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"9090", "127.0.0.1", "127.0.0.1:", ""} {
		if err := CheckAddr(bad); err == nil {
			t.Errorf("CheckAddr(%q) accepted", bad)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, "127.9.9.9:1": true,
		":1": false, "0.0.0.0:1": false, "10.0.0.1:1": false, "example.com:1": false, "bad": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func start(t *testing.T, h http.Handler, lim Limits) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", h, lim, nil, "test", "/")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

// A client that opens a connection and sends nothing is cut off by the
// header timeout instead of holding the connection for ever.
func TestSlowClientIsCut(t *testing.T) {
	s := start(t, http.NotFoundHandler(), Limits{ReadHeaderTimeout: 100 * time.Millisecond, ReadTimeout: 100 * time.Millisecond})
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("the server did not close an idle, header-less connection: %v", err)
	}
}

// Connections beyond MaxConns wait: the second client is served only once
// the first one's connection closes.
func TestConnectionBound(t *testing.T) {
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") }), Limits{MaxConns: 1})
	first, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// The first connection is accepted and held open (keep-alive).
	io.WriteString(first, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(first)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("first request: %v", err)
	}
	second, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	io.WriteString(second, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	second.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Fatal("a second connection was served while the bound was reached")
	}
	first.Close()
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(second)
	if err != nil || !strings.Contains(string(b), "hi") {
		t.Fatalf("the second connection was not served once the first closed: %q %v", b, err)
	}
}

// Stream lifts the write timeout for one response.
func TestStreamOutlivesWriteTimeout(t *testing.T) {
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := Stream(w); err != nil {
			t.Error(err)
		}
		for i := 0; i < 3; i++ {
			io.WriteString(w, "tick\n")
			w.(http.Flusher).Flush()
			time.Sleep(150 * time.Millisecond)
		}
	}), Limits{WriteTimeout: 100 * time.Millisecond})
	resp, err := http.Get("http://" + s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || strings.Count(string(b), "tick") != 3 {
		t.Fatalf("stream = %q, %v; want three ticks past the write timeout", b, err)
	}
}
