package novnc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Target is the console a token opens: one instance on the host that runs it.
type Target struct {
	InstanceUUID string
	HostID       string
}

// TokenConsumer validates and burns a console token. Compute implements it:
// the token must exist (looked up by its hash), must not be used or expired,
// and its instance must still run on the host it was issued for. A second
// call with the same token must fail.
//
// Refusals should be fault errors: Unauthorized, NotFound or Invalid for a
// bad, expired or reused token (all answered 401 with the same message),
// Forbidden (403), Conflict (409, its message shown, e.g. "instance is not
// running"), Unavailable (503). Anything else is answered 500.
type TokenConsumer interface {
	ConsumeConsoleToken(ctx context.Context, token string) (*Target, error)
}

// Dialer opens a byte stream to an instance's VNC server on its host, in
// practice through the agent's VNC tunnel. ctx bounds the dial only: the
// stream must stay open after ctx ends, until it is closed.
type Dialer interface {
	DialVNC(ctx context.Context, hostID, instanceUUID string) (io.ReadWriteCloser, error)
}

// Config is what New needs.
type Config struct {
	// Tokens consumes console tokens; required.
	Tokens TokenConsumer
	// Dialer reaches the VNC servers; required.
	Dialer Dialer
	// AllowedOrigins are the origins ("https://cloud.example.com"; a URL
	// with a path is reduced to its origin) whose pages may open a console
	// socket. Empty means the request's own host only.
	AllowedOrigins []string
	// Logger receives one line per refused request and per session; nil
	// discards.
	Logger *slog.Logger
	// IdleTimeout closes a session that carried no data either way for
	// this long. Zero means DefaultIdleTimeout; negative disables it.
	IdleTimeout time.Duration
}

// DefaultIdleTimeout is the idle timeout when Config.IdleTimeout is zero.
const DefaultIdleTimeout = 15 * time.Minute

const (
	// maxTokenLen bounds the token before it reaches the consumer.
	maxTokenLen = 256
	// maxClientMessage bounds one websocket message from the browser: RFB
	// client messages are tiny except clipboard text.
	maxClientMessage = 1 << 20
	// chunkSize bounds one websocket message to the browser.
	chunkSize = 64 << 10
	// The subprotocol noVNC asks for; "base64" is obsolete and refused.
	subprotocol = "binary"
)

// Proxy is the console proxy. Its methods are safe for concurrent use.
type Proxy struct {
	tokens   TokenConsumer
	dialer   Dialer
	origins  *originPolicy
	log      *slog.Logger
	upgrader websocket.Upgrader
	page     *page

	idle        time.Duration
	dialTimeout time.Duration
	writeWait   time.Duration
	pingPeriod  time.Duration
	pongWait    time.Duration

	mu       sync.Mutex
	sessions map[string]map[*session]struct{} // by instance UUID
}

// New returns a proxy for cfg. It panics when Tokens or Dialer is nil, a
// wiring mistake.
func New(cfg Config) *Proxy {
	if cfg.Tokens == nil || cfg.Dialer == nil {
		panic("novnc: Config needs Tokens and Dialer")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	idle := cfg.IdleTimeout
	if idle == 0 {
		idle = DefaultIdleTimeout
	}
	p := &Proxy{
		tokens:      cfg.Tokens,
		dialer:      cfg.Dialer,
		origins:     newOriginPolicy(cfg.AllowedOrigins, log),
		log:         log,
		page:        newPage(),
		idle:        idle,
		dialTimeout: 15 * time.Second,
		writeWait:   10 * time.Second,
		pingPeriod:  25 * time.Second,
		pongWait:    60 * time.Second,
		sessions:    map[string]map[*session]struct{}{},
	}
	p.upgrader = websocket.Upgrader{
		ReadBufferSize:  16 << 10,
		WriteBufferSize: chunkSize,
		Subprotocols:    []string{subprotocol},
		// Checked before the token is consumed; repeated here so that no
		// path to Upgrade can skip it.
		CheckOrigin: p.origins.allowed,
	}
	return p
}

// Handler serves the console under /console: the client page at
// /console/vnc_lite.html (and /console/vnc.html), its script and style, and
// the websocket at /console/websockify. It works mounted with chi's Mount or
// http.ServeMux (full path) and behind http.StripPrefix("/console", ...).
func (p *Proxy) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path
		if strings.HasPrefix(name, "/console/") {
			name = strings.TrimPrefix(name, "/console")
		}
		if name == "/websockify" {
			if r.Method != http.MethodGet {
				w.Header().Set("Allow", "GET")
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			p.serveWebsockify(w, r)
			return
		}
		p.page.serve(w, r, name)
	})
}

// serveWebsockify refuses, in this order and before any upgrade, a foreign
// Origin, a request that is not a websocket handshake or asks only for
// other subprotocols, and a token the consumer refuses; then it dials the
// VNC server and pumps bytes until the session ends.
func (p *Proxy) serveWebsockify(w http.ResponseWriter, r *http.Request) {
	log := p.log.With("remote", r.RemoteAddr)
	if !p.origins.allowed(r) {
		log.Warn("console: origin refused", "origin", r.Header.Get("Origin"), "host", r.Host)
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "websocket handshake required", http.StatusBadRequest)
		return
	}
	if asked := websocket.Subprotocols(r); len(asked) > 0 && !slices.Contains(asked, subprotocol) {
		http.Error(w, "only the binary subprotocol is supported", http.StatusBadRequest)
		return
	}
	token := r.URL.Query().Get("token")
	if token == "" || len(token) > maxTokenLen {
		log.Warn("console: token missing or oversized")
		http.Error(w, "console token is invalid, expired or already used", http.StatusUnauthorized)
		return
	}
	log = log.With("token", TokenID(token))
	target, err := p.tokens.ConsumeConsoleToken(r.Context(), token)
	if err == nil && (target == nil || target.InstanceUUID == "") {
		err = fault.Wrap(fault.Internal, nil, "token consumer returned no target")
	}
	if err != nil {
		status, msg := tokenRefusal(err)
		// The consumer should never echo the token; redact it anyway.
		log.Warn("console: token refused", "status", status,
			"err", strings.ReplaceAll(err.Error(), token, "[token]"))
		http.Error(w, msg, status)
		return
	}
	log = log.With("instance", target.InstanceUUID, "host", target.HostID)

	s := p.open(*target)
	defer p.forget(s)

	ctx, cancel := context.WithTimeout(r.Context(), p.dialTimeout)
	vnc, err := p.dialer.DialVNC(ctx, target.HostID, target.InstanceUUID)
	cancel()
	if err != nil {
		log.Error("console: dial vnc", "err", err)
		http.Error(w, "console unavailable", http.StatusBadGateway)
		return
	}
	if !s.attachVNC(vnc) {
		http.Error(w, "console closed", http.StatusGone)
		return
	}
	ws, err := p.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has answered the request.
		s.close(websocket.CloseNormalClosure, "upgrade failed")
		log.Warn("console: upgrade", "err", err)
		return
	}
	if !s.attachWS(ws) {
		return
	}
	start := time.Now()
	log.Info("console: session open")
	toVNC, toBrowser := p.pump(s, ws, vnc)
	log.Info("console: session closed", "reason", s.reason(),
		"duration", time.Since(start).Round(time.Millisecond),
		"bytes_to_vnc", toVNC, "bytes_to_browser", toBrowser)
}

// tokenRefusal maps a consumer error to the answer: one message for every
// kind of bad token, so the answer tells nothing about which tokens exist.
func tokenRefusal(err error) (int, string) {
	switch fault.KindOf(err) {
	case fault.Unauthorized, fault.NotFound, fault.Invalid:
		return http.StatusUnauthorized, "console token is invalid, expired or already used"
	case fault.Forbidden:
		return http.StatusForbidden, "console token refused"
	case fault.Conflict:
		return http.StatusConflict, fault.Message(err)
	case fault.Unavailable:
		return http.StatusServiceUnavailable, "console unavailable"
	default:
		return http.StatusInternalServerError, "console token check failed"
	}
}

// TokenID is what logs show of a console token: the first 8 hex digits of
// its SHA-256, enough to correlate with the token's stored hash and useless
// for opening a console.
func TokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:4])
}
