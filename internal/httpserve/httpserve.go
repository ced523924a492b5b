// Package httpserve runs the small HTTP servers of cordstream's commands
// (metrics, health, the analyzer's API and dashboard) with the limits a
// server that may face an untrusted network needs: read, write and idle
// timeouts, a bound on header size and on open connections.
//
// An address without a host (":9090") serves every interface, as net.Listen
// does; the server then logs a warning, since what it serves becomes
// readable by anyone who reaches the port.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// Limits of a server. The zero value of each field takes its default.
type Limits struct {
	ReadHeaderTimeout time.Duration // default 5s
	ReadTimeout       time.Duration // default 10s
	WriteTimeout      time.Duration // default 30s; streams extend it per response (see Stream)
	IdleTimeout       time.Duration // default 60s
	MaxHeaderBytes    int           // default 16 KiB
	MaxConns          int           // default 64 open connections; more wait in the kernel's backlog
}

func (l Limits) withDefaults() Limits {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.ReadHeaderTimeout, 5*time.Second)
	def(&l.ReadTimeout, 10*time.Second)
	def(&l.WriteTimeout, 30*time.Second)
	def(&l.IdleTimeout, 60*time.Second)
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 16 << 10
	}
	if l.MaxConns <= 0 {
		l.MaxConns = 64
	}
	return l
}

// Server is an HTTP server on a listener opened up front, so that ":0"
// works and the real address is known before serving.
type Server struct {
	ln  net.Listener
	srv *http.Server
	log *slog.Logger
}

// CheckAddr refuses an address that is not host:port (the host may be
// empty, meaning every interface).
func CheckAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (for example 127.0.0.1:9090): %v", addr, err)
	}
	if port == "" {
		return fmt.Errorf("%q has no port (for example 127.0.0.1:9090)", addr)
	}
	return nil
}

// IsLoopback reports whether addr's host is a loopback address or localhost.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Listen opens addr and returns a server for h. name says what it serves in
// the logs ("metrics", "api"); paths lists its main paths for the log line.
// Serving on a non-loopback address is logged as a warning that says what
// anyone who reaches the port can read.
func Listen(addr string, h http.Handler, lim Limits, log *slog.Logger, name, paths string) (*Server, error) {
	if err := CheckAddr(addr); err != nil {
		return nil, fmt.Errorf("%s listener: %w", name, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listener on %s: %w", name, addr, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lim = lim.withDefaults()
	log = log.With("component", name)
	log.Info("serving "+name, "addr", ln.Addr().String(), "paths", paths)
	if !IsLoopback(addr) {
		log.Warn("serving on a non-loopback address: anyone who reaches it can read what it serves (read-only); bind 127.0.0.1 or put an authenticating proxy in front", "addr", ln.Addr().String())
	}
	return &Server{
		ln: netutil.LimitListener(ln, lim.MaxConns),
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: lim.ReadHeaderTimeout,
			ReadTimeout:       lim.ReadTimeout,
			WriteTimeout:      lim.WriteTimeout,
			IdleTimeout:       lim.IdleTimeout,
			MaxHeaderBytes:    lim.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		log: log,
	}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close releases the listener of a server that will not Run.
func (s *Server) Close() error { return s.ln.Close() }

// Run serves until ctx ends, then shuts down, waiting at most two seconds
// for requests in flight (streams are cut).
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

// Stream lifts the server's write timeout for a long-lived response (a
// Server-Sent Events stream), which must instead end when the client goes
// away or ctx ends. It returns an error if the connection cannot be
// controlled.
func Stream(w http.ResponseWriter) error {
	return http.NewResponseController(w).SetWriteDeadline(time.Time{})
}
