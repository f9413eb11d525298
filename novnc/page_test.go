package novnc

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// vendored is where `make assets` puts noVNC, relative to this package.
const vendored = "../static/vendor/novnc"

func get(t *testing.T, h http.Handler, target string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Result()
}

var (
	scriptTag  = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script\s*>`)
	srcAttr    = regexp.MustCompile(`(?i)\ssrc="([^"]+)"`)
	inlineAttr = regexp.MustCompile(`(?i)\s(on[a-z]+|style)\s*=`)
	urlAttr    = regexp.MustCompile(`(?i)\s(?:src|href)="([^"]+)"`)
)

func TestConsolePage(t *testing.T) {
	r := newRig(t, nil)
	h := r.proxy.Handler()
	for _, name := range []string{"/console/vnc_lite.html", "/console/vnc.html"} {
		t.Run(name, func(t *testing.T) {
			resp := get(t, h, name+"?token=tok-in-the-url")
			body, _ := io.ReadAll(resp.Body)
			page := string(body)
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			for k, want := range map[string]string{
				"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
					"connect-src 'self' ws: wss:; frame-ancestors 'self'",
				"X-Frame-Options":        "SAMEORIGIN",
				"Cache-Control":          "no-store",
				"Referrer-Policy":        "no-referrer",
				"X-Content-Type-Options": "nosniff",
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			if strings.Contains(page, "tok-in-the-url") {
				t.Error("the page echoes the token")
			}

			scripts := scriptTag.FindAllStringSubmatch(page, -1)
			if len(scripts) == 0 || strings.Count(strings.ToLower(page), "<script") != len(scripts) {
				t.Fatalf("cannot account for every <script> tag in:\n%s", page)
			}
			for _, s := range scripts {
				if !srcAttr.MatchString(s[1]) || strings.TrimSpace(s[2]) != "" {
					t.Errorf("inline script: %s", s[0])
				}
			}
			if m := inlineAttr.FindString(page); m != "" || strings.Contains(strings.ToLower(page), "<style") {
				t.Errorf("inline handler or style %q in:\n%s", m, page)
			}

			// Every URL the page loads exists: ours from the handler,
			// noVNC's from static/ (vendored by `make assets`).
			for _, m := range urlAttr.FindAllStringSubmatch(page, -1) {
				u := m[1]
				switch {
				case strings.HasPrefix(u, "/console/"):
					if resp := get(t, h, u); resp.StatusCode != http.StatusOK {
						t.Errorf("%s: %d", u, resp.StatusCode)
					}
				case strings.HasPrefix(u, "/static/"):
					if _, err := os.Stat(filepath.Join("..", u)); err != nil {
						t.Errorf("%s: %v (run `make assets`)", u, err)
					}
				default:
					t.Errorf("the page loads %s from elsewhere", u)
				}
			}
		})
	}
}

func TestConsoleScript(t *testing.T) {
	h := newRig(t, nil).proxy.Handler()
	page := string(must(io.ReadAll(get(t, h, "/console/vnc_lite.html").Body)))
	js := regexp.MustCompile(`src="(/console/console\.js\?v=[0-9a-f]+)"`).FindStringSubmatch(page)
	if js == nil {
		t.Fatalf("no versioned console.js in:\n%s", page)
	}
	resp := get(t, h, js[1])
	body := string(must(io.ReadAll(resp.Body)))
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("console.js served as %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("versioned console.js: Cache-Control %q", cc)
	}
	if cc := get(t, h, "/console/console.js").Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("unversioned console.js: Cache-Control %q", cc)
	}
	for _, want := range []string{
		"from '" + RFBModule + "'",
		"/console/websockify?token=",
		"wsProtocols: ['binary']",
		"sendCtrlAltDel",
		"requestFullscreen",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("console.js lacks %q", want)
		}
	}
}

// TestVendoredNoVNC checks that `make assets` mirrored a complete module
// tree: every relative import of every vendored module resolves.
func TestVendoredNoVNC(t *testing.T) {
	if _, err := os.Stat(filepath.Join("..", RFBModule)); err != nil {
		t.Fatalf("noVNC is not vendored (run `make assets`): %v", err)
	}
	imports := regexp.MustCompile(`(?m)^\s*(?:import|export)\b[^'"]*?(?:from\s*)?['"](\.{1,2}/[^'"]+)['"]`)
	n := 0
	err := filepath.WalkDir(vendored, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range imports.FindAllStringSubmatch(string(src), -1) {
			n++
			dep := path.Join(path.Dir(filepath.ToSlash(p)), m[1])
			if _, err := os.Stat(dep); err != nil {
				t.Errorf("%s imports %s, which is not vendored", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Errorf("found only %d relative imports; is the pattern still right?", n)
	}
}

func TestHandlerRoutes(t *testing.T) {
	p := newRig(t, nil).proxy
	chiRouter := chi.NewRouter()
	chiRouter.Mount("/console", p.Handler())
	mounts := map[string]http.Handler{
		"chi Mount":   chiRouter,
		"StripPrefix": http.StripPrefix("/console", p.Handler()),
		"bare":        p.Handler(),
	}
	for name, h := range mounts {
		for target, want := range map[string]int{
			"/console/vnc_lite.html": 200,
			"/console/console.css":   200,
			"/console/nope.html":     404,
			"/console/":              404,
		} {
			if got := get(t, h, target).StatusCode; got != want {
				t.Errorf("%s: GET %s: %d, want %d", name, target, got, want)
			}
		}
	}
	h := p.Handler()
	for _, method := range []string{http.MethodPost, http.MethodDelete} {
		for _, target := range []string{"/console/vnc_lite.html", "/console/websockify"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d, want 405", method, target, rec.Code)
			}
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/console/vnc_lite.html", nil))
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("HEAD: %d, %d bytes, CSP %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Security-Policy"))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
