package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"
)

// web holds the page: index.html, its own app.js and app.css (written for
// this package, no dependencies), and uPlot's built files with its licence
// under vendor/uplot/ (fetched by scripts/vendor-uplot at a pinned version
// and checked against the sha256 sums recorded there).
//
//go:embed web
var web embed.FS

// asset is one embedded file, with the ETag it is served with.
type asset struct {
	data []byte
	etag string
}

var assets = loadAssets()

func loadAssets() map[string]asset {
	m := make(map[string]asset)
	err := fs.WalkDir(web, "web", func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := web.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		m[p[len("web/"):]] = asset{data: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic("dashboard: embedded assets: " + err.Error()) // a build without them is broken
	}
	return m
}

func serveIndex(w http.ResponseWriter, r *http.Request) { serveFile(w, r, "index.html") }

func serveAsset(w http.ResponseWriter, r *http.Request) {
	name := path.Clean(r.URL.Path)
	if name == "index.html" {
		http.Redirect(w, r, "/", http.StatusMovedPermanently)
		return
	}
	serveFile(w, r, name)
}

// serveFile serves an embedded file. Browsers revalidate it (no-cache) and
// get 304 while its ETag matches, so a new build is picked up at once.
func serveFile(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := assets[name]
	if !ok {
		writeError(w, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no asset " + name, Hint: "the page is at /"})
		return
	}
	w.Header().Set("ETag", a.etag)
	w.Header().Set("Cache-Control", "no-cache")
	if path.Base(name) == "LICENSE" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.data))
}
