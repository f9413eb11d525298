package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/views"
)

// liveURL is the live-updates WebSocket, one per tab.
const liveURL = "/live"

const (
	// liveQueue bounds the messages waiting for one tab: a slow or dead tab
	// loses them (and is resynced) instead of holding up the hub.
	liveQueue = 64
	// liveWriteWait bounds one write to a tab; a tab that takes longer is
	// dead and its socket is closed.
	liveWriteWait = 5 * time.Second
	// livePongWait is how long a tab may stay silent (no pong) before its
	// socket is closed; pings go out at 9/10 of it.
	livePongWait = 60 * time.Second
	// liveConsoleEvery is how often a tab showing an instance's console log
	// is sent the lines that appeared.
	liveConsoleEvery = 2 * time.Second
	// liveRecheck is how often a socket's token is checked again, so that
	// signing out (which revokes it) ends the other tabs' sockets too.
	liveRecheck = 30 * time.Second
)

// liveResync is the message that tells a tab it missed messages: it swaps
// into #live-resync, and app.js then re-fetches the page's live regions.
func liveResync() []byte {
	// innerHTML keeps the target in the page, so htmx:oobAfterSwap bubbles.
	return []byte(`<div id="live-resync" hx-swap-oob="innerHTML"><span data-at="` +
		time.Now().UTC().Format(time.RFC3339Nano) + `"></span></div>`)
}

// liveHello is what a tab sends: the page it shows, at connect and after
// each in-page navigation (tabs, sorting), so the hub knows which events
// concern it.
type liveHello struct {
	Page string `json:"page"`
}

// live is GET /live: a logged-in tab's WebSocket (requireLogin guards it;
// only this site's pages may open it). It carries HTML fragments for
// htmx's out-of-band swaps through the htmx ws extension: the hub queues
// them (see liveHub) and this goroutine writes them, pings the tab, and
// follows the console log of the instance page it shows. ?page= is the
// page at connect time. The session's expiry bounds the socket's life.
func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	if s.hub == nil || s.comp == nil {
		http.NotFound(w, r)
		return
	}
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 8192, CheckOrigin: sameOrigin}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	defer conn.Close()
	c := newLiveClient(r, s.hub.queue, r.URL.Query().Get("page"))
	s.hub.add(c)
	defer s.hub.remove(c)

	gone := make(chan struct{})
	conn.SetReadLimit(4096)
	_ = conn.SetReadDeadline(time.Now().Add(livePongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(livePongWait)) })
	go func() {
		defer close(gone)
		for {
			kind, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var hello liveHello
			if kind == websocket.TextMessage && json.Unmarshal(msg, &hello) == nil && hello.Page != "" {
				c.setPage(hello.Page)
			}
		}
	}()
	ping := time.NewTicker(livePongWait * 9 / 10)
	defer ping.Stop()
	follow := time.NewTicker(liveConsoleEvery)
	defer follow.Stop()
	expiry := time.Until(c.v.ExpiresAt)
	if c.v.ExpiresAt.IsZero() {
		expiry = 24 * time.Hour
	}
	expired := time.NewTimer(expiry)
	defer expired.Stop()
	recheck := time.NewTicker(s.hub.recheck)
	defer recheck.Stop()
	closeWith := func(code int, why string) {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, why), time.Now().Add(time.Second))
	}

	write := func(b []byte) bool {
		_ = conn.SetWriteDeadline(time.Now().Add(liveWriteWait))
		return conn.WriteMessage(websocket.TextMessage, b) == nil
	}
	// resync drops what is queued (stale once anything was lost) and tells
	// the tab to fetch the current state.
	resync := func() bool {
		for len(c.send) > 0 {
			<-c.send
		}
		return write(liveResync())
	}
	var lastLog string // the console log last sent, per instance page
	var logPage livePage
	for {
		select {
		case <-gone:
			return
		case <-expired.C:
			closeWith(websocket.ClosePolicyViolation, "session expired")
			return
		case <-recheck.C:
			if _, err := s.id.ValidateToken(r.Context(), c.v.Token); err != nil && fault.KindOf(err) != fault.Unavailable {
				closeWith(websocket.ClosePolicyViolation, "signed out")
				return
			}
		case <-ping.C:
			if conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(liveWriteWait)) != nil {
				return
			}
		case <-c.kick:
			if c.resync.Swap(false) && !resync() {
				return
			}
		case msg := <-c.send:
			if c.resync.Swap(false) {
				if !resync() {
					return
				}
				continue
			}
			if !write(msg) {
				return
			}
		case <-follow.C:
			p := *c.page.Load()
			if p.kind != pageInstance || p.tab != "log" {
				continue
			}
			if p != logPage {
				logPage, lastLog = p, ""
			}
			l := s.consoleLog(r.Context(), p.id)
			if text := l.Text + "\x00" + l.Error; text != lastLog {
				lastLog = text
				// The tab panel takes the log view as a reload renders it.
				msg := append([]byte(`<div hx-swap-oob="innerHTML:#tab-panel">`), renderFragment(r.Context(), views.ConsoleLogView(l))...)
				if !write(append(msg, "</div>"...)) {
					return
				}
			}
		}
	}
}

// sameOrigin admits a WebSocket only from this site's own pages: the
// browser's Origin must name the host the request came to.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host) && (u.Scheme == "http" || u.Scheme == "https")
}
