package novnc

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"net/http"
)

// assets holds the console page and its own script and style; noVNC itself
// is served from /static/vendor/novnc/.
//
//go:embed assets/console.html assets/console.js assets/console.css
var assets embed.FS

// pageCSP is the console page's policy: like the dashboard's, nothing
// inline, but the socket may use ws:/wss: and the dashboard (same origin)
// may frame the page.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self' ws: wss:; frame-ancestors 'self'"

// RFBModule is the noVNC module the console script imports; `make assets`
// vendors it.
const RFBModule = "/static/vendor/novnc/core/rfb.js"

// page is the rendered console page and its versioned script and style.
type page struct {
	html  []byte
	files map[string]asset // by path below /console
}

type asset struct {
	body        []byte
	contentType string
	version     string
}

func newPage() *page {
	p := &page{files: map[string]asset{}}
	for name, ct := range map[string]string{
		"console.js":  "text/javascript; charset=utf-8",
		"console.css": "text/css; charset=utf-8",
	} {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			panic("novnc: embedded asset missing: " + err.Error())
		}
		sum := sha256.Sum256(b)
		p.files["/"+name] = asset{body: b, contentType: ct, version: hex.EncodeToString(sum[:6])}
	}
	tmpl := template.Must(template.ParseFS(assets, "assets/console.html"))
	var buf bytes.Buffer
	err := tmpl.Execute(&buf, map[string]string{
		"JS":  "/console/console.js?v=" + p.files["/console.js"].version,
		"CSS": "/console/console.css?v=" + p.files["/console.css"].version,
		"RFB": RFBModule,
	})
	if err != nil {
		panic("novnc: render console page: " + err.Error())
	}
	p.html = buf.Bytes()
	return p
}

// serve answers the page and its assets; name is the path below /console.
func (p *page) serve(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	switch name {
	case "/vnc_lite.html", "/vnc.html":
		h.Set("Content-Security-Policy", pageCSP)
		// Override a dashboard-wide DENY: the dashboard frames this page.
		h.Set("X-Frame-Options", "SAMEORIGIN")
		// The page's URL carries the token: keep it out of caches and
		// Referer headers.
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Type", "text/html; charset=utf-8")
		if r.Method == http.MethodGet {
			_, _ = w.Write(p.html)
		}
	default:
		a, ok := p.files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("v") == a.version {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		h.Set("Content-Type", a.contentType)
		if r.Method == http.MethodGet {
			_, _ = w.Write(a.body)
		}
	}
}
