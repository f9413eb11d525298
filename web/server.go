// Package web is Nimbus's HTTP front door: it mounts the OpenStack REST APIs
// under their path prefixes and serves the dashboard, a server-rendered
// templ + htmx application, at /.
//
// The dashboard keeps each signed-in user's Keystone token in a server-side
// session (scs, stored in the sessions table), validates that token on every
// request so that revocation ends a session at once, and calls the services
// in-process with the token's credentials in the context, so the services'
// own policy checks apply to every click. Every page answers an htmx request
// with a fragment and a plain request with the full page, from the same
// handler, so the dashboard works without JavaScript too. State-changing
// requests pass Go's cross-origin protection and a per-session CSRF token;
// responses carry a strict Content-Security-Policy with no inline script or
// style.
package web

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/compute"
	"github.com/nimbus-cloud/nimbus/backend/identity"
	"github.com/nimbus-cloud/nimbus/backend/image"
	"github.com/nimbus-cloud/nimbus/backend/network"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/events"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
	"github.com/nimbus-cloud/nimbus/static"
	"github.com/nimbus-cloud/nimbus/views"
)

// Config is what the web server needs.
type Config struct {
	// Identity authenticates dashboard users and serves the identity pages.
	Identity *identity.Service
	// DB holds the sessions table (migration 0002).
	DB *db.DB
	// APIs are the OpenStack REST APIs, mounted as they are under their
	// prefixes with only a request ID added: no session, CSRF or CSP.
	APIs []Mount
	// Secure marks cookies Secure; set it when the listener serves TLS.
	Secure bool
	// Logger receives request failures; slog.Default() when nil.
	Logger *slog.Logger
	// Compute serves the instance, key pair, flavor, hypervisor and
	// compute service pages; when nil those pages and their navigation
	// are absent.
	Compute *compute.Service
	// Images serves the image pages (and the image choices of the launch
	// dialog); when nil those pages are absent.
	Images *image.Service
	// Network serves the network, router, security group and floating IP
	// pages (and the network choices of the launch dialog); when nil those
	// pages are absent.
	Network *network.Service
	// Events, when set, feeds the live updates at /live (instance rows and
	// badges swapped in place, host badges, toasts when actions end);
	// without it pages are plain, and what is in transition polls.
	Events *events.Bus
	// SessionCleanupInterval is how often expired sessions are deleted; 5
	// minutes when zero.
	SessionCleanupInterval time.Duration
}

// Mount is one REST API under a path prefix such as "/identity". It is
// mounted with chi's Mount: a chi router inside sees the path below the
// prefix ("/v3/..."), while r.URL.Path keeps the whole path.
type Mount struct {
	Prefix  string
	Handler http.Handler
}

// Server is the web server: an http.Handler for the whole site. Close stops
// its background session cleanup.
type Server struct {
	id      *identity.Service
	comp    *compute.Service
	imgs    *image.Service
	nets    *network.Service
	hub     *liveHub // nil without Config.Events
	sm      *scs.SessionManager
	store   *sessionStore
	log     *slog.Logger
	secure  bool
	assets  views.Assets
	static  fs.FS
	now     func() time.Time
	handler http.Handler
}

// New builds the web server and starts the loop that deletes expired
// sessions; call Close when done. The returned *Server is an http.Handler.
func New(cfg Config) (*Server, error) {
	if cfg.Identity == nil {
		return nil, errors.New("web: Config.Identity is required")
	}
	if cfg.DB == nil {
		return nil, errors.New("web: Config.DB is required")
	}
	for _, m := range cfg.APIs {
		if !strings.HasPrefix(m.Prefix, "/") || strings.HasSuffix(m.Prefix, "/") || m.Handler == nil {
			return nil, errors.New("web: a Mount needs a prefix like /identity and a handler")
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	assets, err := assetURLs(static.FS)
	if err != nil {
		return nil, err
	}
	s := &Server{
		id:     cfg.Identity,
		comp:   cfg.Compute,
		imgs:   cfg.Images,
		nets:   cfg.Network,
		store:  newSessionStore(cfg.DB, log),
		log:    log,
		secure: cfg.Secure,
		assets: assets,
		static: static.FS,
		now:    time.Now,
	}
	s.sm = newSessionManager(s.store, cfg.Secure)
	s.sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		s.log.ErrorContext(r.Context(), "dashboard session store", "path", r.URL.Path, "err", err)
		http.Error(w, "The session store is unavailable. Try again shortly.", http.StatusInternalServerError)
	}
	if cfg.Events != nil {
		s.hub = newLiveHub(s, cfg.Events)
	}
	s.handler = s.routes(cfg.APIs)
	interval := cfg.SessionCleanupInterval
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	s.store.startCleanup(interval)
	return s, nil
}

// ServeHTTP serves the whole site.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Handler returns the site's handler (the Server itself).
func (s *Server) Handler() http.Handler { return s }

// Close stops the session cleanup loop and the live hub. It does not close
// the database.
func (s *Server) Close() error {
	s.store.stopCleanup()
	if s.hub != nil {
		s.hub.close()
	}
	return nil
}

// routes is the one place every URL is declared.
func (s *Server) routes(apis []Mount) http.Handler {
	root := chi.NewRouter()
	for _, m := range apis {
		root.Mount(m.Prefix, rest.WithRequestID(m.Handler))
	}
	root.Handle("/static/*", securityHeaders(s.staticHandler()))

	d := chi.NewRouter()
	d.NotFound(s.requireLogin(http.HandlerFunc(s.notFound)).ServeHTTP)
	d.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
	})

	// No session needed: the login form itself.
	d.Get("/auth/login", s.loginForm)
	d.Post("/auth/login", s.login)

	d.Group(func(d chi.Router) {
		d.Use(s.requireLogin, s.verifyCSRF)

		d.Get("/", redirectTo("/project/overview"))
		d.Post("/auth/logout", s.logout)
		d.Post("/auth/switch-project", s.switchProject)
		d.Get(liveURL, s.live)

		d.Get("/project", redirectTo("/project/overview"))
		d.Get("/project/overview", s.overview)
		d.Get("/project/api-access/openrc", s.openrc)
		s.computeRoutes(d)
		s.imageRoutes(d)
		s.networkRoutes(d)

		d.Group(func(d chi.Router) {
			d.Use(s.requireAdmin)

			d.Get("/admin/system", s.systemInfo)
			s.adminComputeRoutes(d)
			s.adminPageRoutes(d)

			d.Get("/identity-admin", redirectTo(views.ProjectsURL))

			d.Get("/identity-admin/projects", s.projectList)
			d.Get("/identity-admin/projects/new", s.projectNew)
			d.Post("/identity-admin/projects", s.projectCreate)
			d.Get("/identity-admin/projects/{id}/edit", s.projectEdit)
			d.Post("/identity-admin/projects/{id}", s.projectUpdate)
			d.Get("/identity-admin/projects/{id}/disable", s.projectDisableConfirm)
			d.Post("/identity-admin/projects/{id}/disable", s.projectSetEnabled(false))
			d.Post("/identity-admin/projects/{id}/enable", s.projectSetEnabled(true))
			d.Get("/identity-admin/projects/{id}/delete", s.projectDeleteConfirm)
			d.Post("/identity-admin/projects/{id}/delete", s.projectDelete)
			d.Get("/identity-admin/projects/{id}/members", s.projectMembers)
			d.Post("/identity-admin/projects/{id}/members", s.projectMemberAdd)
			d.Get("/identity-admin/projects/{id}/members/remove", s.projectMemberRemoveConfirm)
			d.Post("/identity-admin/projects/{id}/members/remove", s.projectMemberRemove)

			d.Get("/identity-admin/users", s.userList)
			d.Get("/identity-admin/users/new", s.userNew)
			d.Post("/identity-admin/users", s.userCreate)
			d.Get("/identity-admin/users/{id}/edit", s.userEdit)
			d.Post("/identity-admin/users/{id}", s.userUpdate)
			d.Get("/identity-admin/users/{id}/password", s.userPasswordForm)
			d.Post("/identity-admin/users/{id}/password", s.userPassword)
			d.Get("/identity-admin/users/{id}/disable", s.userDisableConfirm)
			d.Post("/identity-admin/users/{id}/disable", s.userSetEnabled(false))
			d.Post("/identity-admin/users/{id}/enable", s.userSetEnabled(true))
			d.Get("/identity-admin/users/{id}/delete", s.userDeleteConfirm)
			d.Post("/identity-admin/users/{id}/delete", s.userDelete)

			d.Get("/identity-admin/groups", s.groupList)
			d.Get("/identity-admin/groups/new", s.groupNew)
			d.Post("/identity-admin/groups", s.groupCreate)
			d.Get("/identity-admin/groups/{id}/edit", s.groupEdit)
			d.Post("/identity-admin/groups/{id}", s.groupUpdate)
			d.Get("/identity-admin/groups/{id}/delete", s.groupDeleteConfirm)
			d.Post("/identity-admin/groups/{id}/delete", s.groupDelete)
			d.Get("/identity-admin/groups/{id}/members", s.groupMembers)
			d.Post("/identity-admin/groups/{id}/members", s.groupMemberAdd)
			d.Get("/identity-admin/groups/{id}/members/{user}/remove", s.groupMemberRemoveConfirm)
			d.Post("/identity-admin/groups/{id}/members/{user}/remove", s.groupMemberRemove)

			d.Get("/identity-admin/roles", s.roleList)
			d.Get("/identity-admin/roles/new", s.roleNew)
			d.Post("/identity-admin/roles", s.roleCreate)
			d.Get("/identity-admin/roles/{id}/edit", s.roleEdit)
			d.Post("/identity-admin/roles/{id}", s.roleUpdate)
			d.Get("/identity-admin/roles/{id}/delete", s.roleDeleteConfirm)
			d.Post("/identity-admin/roles/{id}/delete", s.roleDelete)
		})
	})

	// Outermost first: request ID, hardening headers, no caching, a small
	// body limit, cross-origin refusal, then the session.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.WarnContext(r.Context(), "dashboard request refused: cross-origin", "method", r.Method, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		http.Error(w, "Cross-origin request refused.", http.StatusForbidden)
	}))
	var dash http.Handler = d
	dash = s.sm.LoadAndSave(dash)
	dash = cop.Handler(dash)
	dash = s.limitBody(dash)
	dash = noStore(dash)
	dash = securityHeaders(dash)
	dash = rest.WithRequestID(dash)
	root.Mount("/", dash)
	return root
}

func redirectTo(to string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, to, http.StatusSeeOther)
	}
}

// staticHandler serves the embedded assets. Pages link them with a ?v=
// content hash, so they can be cached for a year; directories are not
// listed.
func (s *Server) staticHandler() http.Handler {
	files := http.StripPrefix("/static/", http.FileServerFS(s.static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/static/")
		if p == "" || strings.HasSuffix(p, "/") || p == "static.go" {
			http.NotFound(w, r)
			return
		}
		if st, err := fs.Stat(s.static, p); err != nil || st.IsDir() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		files.ServeHTTP(w, r)
	})
}

// assetURLs returns each asset's URL with a hash of its content, so a new
// build never meets a stale cached copy.
func assetURLs(fsys fs.FS) (views.Assets, error) {
	url := func(p string) (string, error) {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return "", errors.New("web: static asset " + p + " is missing (run `make assets` for vendor/)")
		}
		sum := sha256.Sum256(b)
		return "/static/" + p + "?v=" + hex.EncodeToString(sum[:6]), nil
	}
	var a views.Assets
	var err error
	if a.CSS, err = url("css/app.css"); err != nil {
		return a, err
	}
	if a.JS, err = url("js/app.js"); err != nil {
		return a, err
	}
	if a.HTMX, err = url("vendor/htmx.min.js"); err != nil {
		return a, err
	}
	if a.HTMXWS, err = url("vendor/htmx-ext-ws.min.js"); err != nil {
		return a, err
	}
	if a.Favicon, err = url("img/favicon.svg"); err != nil {
		return a, err
	}
	return a, nil
}
