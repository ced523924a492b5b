package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/cordstream/cordstream/internal/dashboard"
	"github.com/cordstream/cordstream/internal/httpserve"
)

// liveView is a query's dashboard served over HTTP (--http): the page at /,
// the JSON API under /api/v1/ and the event stream.
type liveView struct {
	d   *dashboard.Dashboard
	srv *httpserve.Server
	q   dashboard.Query
}

// httpAddr turns an --http value into the address to listen on: a bare port
// ("8080" or ":8080") means the loopback interface, so that the dashboard is
// private unless a host is named.
func httpAddr(flag, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if !strings.Contains(v, ":") {
		v = ":" + v
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil || port == "" {
		return "", usageErrorf("e.g. "+flag+" 127.0.0.1:8080, or "+flag+" 8080 for the same", "%s %q: not a port or host:port", flag, v)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// openLiveView listens on addr and returns the dashboard of query q, not yet
// serving (run serves it).
func openLiveView(addr string, q dashboard.Query, log *slog.Logger) (*liveView, error) {
	return openLiveViews(addr, []dashboard.Query{q}, log)
}

// openLiveViews is openLiveView for several queries (at least one; q of the
// view is the first).
func openLiveViews(addr string, qs []dashboard.Query, log *slog.Logger) (*liveView, error) {
	var d *dashboard.Dashboard // set before the server serves
	srv, err := httpserve.Listen(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.Handler().ServeHTTP(w, r)
	}), httpserve.Limits{}, log, "dashboard", "/ /api/v1/ /api/v1/events")
	if err != nil {
		return nil, fmt.Errorf("--http: %w", err)
	}
	opt := dashboard.Options{Log: log}
	if httpserve.IsLoopback(addr) {
		// Only the names a browser on this machine uses, with the port
		// chosen: a page of another site cannot read the dashboard through
		// a name it controls (DNS rebinding).
		opt.AllowedHosts = dashboard.LoopbackHosts(srv.Addr())
	}
	if d, err = dashboard.New(qs, opt); err != nil {
		srv.Close()
		return nil, err
	}
	return &liveView{d: d, srv: srv, q: qs[0]}, nil
}

// URL is the page's address.
func (v *liveView) URL() string {
	addr := v.srv.Addr()
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "::" || host == "0.0.0.0" || host == "") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	return "http://" + addr + "/"
}

// run serves until ctx ends. The event streams end first, each cleanly, so
// that the server's shutdown does not wait for them and browsers see an
// ended stream (and reconnect) rather than a broken one.
func (v *liveView) run(ctx context.Context) error {
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case <-ctx.Done():
			v.d.Close()
			stop()
		case <-sctx.Done():
		}
	}()
	err := v.srv.Run(sctx)
	v.d.Close()
	return err
}
